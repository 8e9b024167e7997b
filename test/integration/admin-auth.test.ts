/**
 * The admin API's token: every admin endpoint refuses a call without a current admin token (401,
 * RFC 6750 challenge), answers with one, and writes an audit line for every state-changing call.
 *
 *   curl -H "Authorization: Bearer tga.<name>.<secret>" control listener /admin/* -> AdminGuard -> route
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminTokens, parseAdminToken } from '../../src/admin/tokens.js';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { ScimTokens } from '../../src/scim/tokens.js';
import { controlCall, startTestTollgate, testConfig } from '../helpers/tollgate.js';

const certDir = mkdtempSync(join(tmpdir(), 'tollgate-admin-auth-'));
const okta = makeSigningPair('Okta');
writeFileSync(join(certDir, 'okta.pem'), okta.certPem);
const tg = await startTestTollgate((d) =>
  testConfig(d, {
    idps: [{ id: 'okta', name: 'Okta', ssoUrl: 'https://example.okta.test/app/sso/saml', certificate: join(certDir, 'okta.pem'), entityId: 'http://www.okta.com/exk1', default: true, provisioning: 'scim' }],
  }),
);
t.teardown(async () => {
  await tg.close();
  rmSync(certDir, { recursive: true, force: true });
});

/** ENDPOINTS is every admin endpoint, with what it answers a good token and whether it changes state. */
const ENDPOINTS: [method: string, path: string, ok: number, action: string | null, body?: unknown][] = [
  ['GET', '/admin/users?idp=okta', 200, null],
  ['GET', '/admin/groups?idp=okta', 200, null],
  ['POST', '/admin/scim/token?idp=okta', 200, 'scim.token.rotate'],
  ['POST', '/admin/reauth', 200, 'sessions.reauth'],
  ['POST', '/admin/activate', 200, 'config.activate'],
  ['GET', '/api/users', 200, null],
  ['GET', '/api/groups', 200, null],
  ['GET', '/api/sessions', 200, null],
  ['POST', '/api/sessions/revoke', 200, 'sessions.revoke', { session: 'none' }],
  ['POST', '/api/reauth', 200, 'sessions.reauth', { everyone: true }],
  ['GET', '/api/idps', 200, null],
  ['GET', '/api/locations', 200, null],
  ['GET', '/api/exemptions', 200, null],
  ['GET', '/api/idps/metadata?idp=okta', 200, null],
  ['POST', '/api/idps/scim-token', 200, 'scim.token.rotate', { idp: 'okta' }],
  ['GET', '/api/config', 200, null],
  ['PUT', '/api/config/draft/unknownSources', 200, 'config.stage', 'deny'],
  ['GET', '/api/config/draft', 200, null],
  ['GET', '/api/config/diff', 200, null],
  ['POST', '/api/activate', 200, 'config.activate'],
  ['GET', '/api/config/history', 200, null],
  ['POST', '/api/config/rollback', 200, 'config.rollback', { version: 1 }],
  ['PUT', '/api/config/draft', 200, 'config.stage', { unknownSources: 'deny' }],
  ['DELETE', '/api/config/draft', 200, 'config.discard'],
  ['GET', '/api/nodes', 200, null],
  ['POST', '/api/log/reopen', 200, 'log.reopen'],
  // A good token gets as far as the metadata check.
  ['POST', '/api/idps/import', 400, 'idp.import', { id: 'x', metadata: '<not-xml' }],
];

/** call sends one request to the control listener, with a JSON body when given. */
async function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: string }> {
  if (body === undefined) return controlCall(tg.controlPort, method, path, headers);
  const r = await fetch(`http://127.0.0.1:${tg.controlPort}${path}`, { method, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.text() };
}

const tokens = new AdminTokens(tg.tg.store);
const revoked = await tokens.generate('gone');
await tokens.revoke('gone');
const scimToken = await new ScimTokens(tg.tg.store).generate('1/okta');
const good = parseAdminToken(tg.adminToken)!;
const who = good.name;

/** WRONG is every way of not presenting the current admin token, with the code it gets. */
const WRONG: [name: string, headers: Record<string, string>, code: string][] = [
  ['no Authorization header', {}, 'admin_token_missing'],
  ['Basic credentials', { authorization: 'Basic dGVzdDp0ZXN0' }, 'admin_token_missing'],
  ['Bearer with nothing after it', { authorization: 'Bearer ' }, 'admin_token_missing'],
  ['a random string', { authorization: 'Bearer not-a-token' }, 'admin_token_invalid'],
  ['the right name with a wrong secret', { authorization: `Bearer tga.${who}.${'x'.repeat(43)}` }, 'admin_token_invalid'],
  ["the right secret under another name", { authorization: `Bearer tga.other.${good.secret}` }, 'admin_token_invalid'],
  ['a revoked token', { authorization: `Bearer ${revoked}` }, 'admin_token_invalid'],
  ['a SCIM token', { authorization: `Bearer ${scimToken}` }, 'admin_token_invalid'],
  ['the token with a character changed', { authorization: `Bearer ${tg.adminToken.slice(0, -1)}${tg.adminToken.endsWith('A') ? 'B' : 'A'}` }, 'admin_token_invalid'],
];

t.test('every admin endpoint refuses a call without the current admin token', async (t) => {
  for (const [method, path, , , body] of ENDPOINTS) {
    for (const [name, headers, code] of WRONG) {
      const r = await call(method, path, { accept: 'application/json', ...headers }, body);
      t.equal(r.status, 401, `${method} ${path}: ${name}`);
      t.match(JSON.parse(r.body), { error: { status: 401, code } }, `${method} ${path}: ${name} -> ${code}`);
    }
  }
  const r = await fetch(`http://127.0.0.1:${tg.controlPort}/admin/users?idp=okta`, { headers: { authorization: 'Bearer tga.test.nope' } });
  t.equal(r.headers.get('www-authenticate'), 'Bearer realm="tollgate-admin", error="invalid_token"', 'RFC 6750 §3 challenge');
  const none = await fetch(`http://127.0.0.1:${tg.controlPort}/admin/users?idp=okta`);
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="tollgate-admin"');
  t.equal(tg.tg.runtime.current.version, 1, 'no refused activation ran');
  t.equal((await call('GET', '/api/nosuch', {})).status, 404, 'an unknown path is a plain 404');
});

t.test('every admin endpoint answers the right token, also in lower-case "bearer"', async (t) => {
  for (const authorization of [tg.admin.authorization, `bearer ${tg.adminToken}`]) {
    for (const [method, path, ok, , body] of ENDPOINTS) {
      const r = await call(method, path, { accept: 'application/json', authorization }, body);
      t.equal(r.status, ok, `${method} ${path} (${authorization.slice(0, 6)}; the scheme is case-insensitive, RFC 7235 §2.1): ${r.body.slice(0, 200)}`);
    }
  }
});

t.test('health, readiness and metrics stay open on the control listener', async (t) => {
  for (const path of ['/healthz', '/readyz', '/metrics']) t.equal((await controlCall(tg.controlPort, 'GET', path)).status, 200, path);
});

t.test('each state-changing call writes one audit line: who, what, outcome', async (t) => {
  const audit = () => tg.app.lines.filter((l) => l.msg === 'admin audit');
  const from = audit().length;
  await controlCall(tg.controlPort, 'POST', '/admin/reauth?user=alice@example.test', tg.admin);
  await controlCall(tg.controlPort, 'POST', '/admin/reauth', { authorization: 'Bearer tga.test.nope' });
  await controlCall(tg.controlPort, 'POST', '/admin/scim/token?idp=nope', tg.admin);
  await controlCall(tg.controlPort, 'GET', '/admin/users?idp=okta', tg.admin);
  const lines = audit().slice(from);
  t.equal(lines.length, 3, 'reads are not audited');
  t.match(lines[0], { component: 'audit', who, action: 'sessions.reauth', target: { user: 'alice@example.test' }, outcome: 'ok', status: 200, detail: { revoked: 0 }, peer: '127.0.0.1' });
  t.type(lines[0]!.time, 'string');
  t.match(lines[1], { who: null, action: 'sessions.reauth', outcome: 'refused', status: 401, code: 'admin_token_invalid' });
  t.match(lines[2], { who, action: 'scim.token.rotate', target: { idp: 'nope' }, outcome: 'refused', status: 404, code: 'unknown_idp' });
  // Every call the endpoint table made with a good token is in the log too.
  const all = audit();
  for (const [, , ok, action] of ENDPOINTS) if (action !== null && action !== undefined && ok < 400) t.ok(all.some((l) => l.action === action && l.who === who && l.outcome === 'ok'), `${action} audited`);
  t.notMatch(JSON.stringify(tg.app.lines), good.secret, 'the admin token is never logged');
});
