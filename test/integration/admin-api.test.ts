/**
 * The ops admin API's directory and IdP views on a real Tollgate: User Management filtered and paged
 * across IdPs, the IdP page (SP metadata, SCIM base URL, token rotation, certificate expiry), and force
 * re-authentication. Sessions and revocation across nodes are in admin-sessions.test.ts.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Directory } from '../../src/directory/directory.js';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP, SCHEMA_USER } from '../../src/scim/attributes.js';
import { ScimClient } from '../helpers/scim.js';
import { startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';

const certDir = mkdtempSync(join(tmpdir(), 'tollgate-admin-api-'));
for (const id of ['okta', 'entra']) writeFileSync(join(certDir, `${id}.pem`), makeSigningPair(id).certPem);
const idp = (id: string, extra: Record<string, unknown>) => ({ id, name: id.toUpperCase(), ssoUrl: `https://${id}.example.test/sso`, certificate: join(certDir, `${id}.pem`), entityId: `urn:${id}`, ...extra });
const tg = await startTestTollgate((d) =>
  testConfig(d, {
    idps: [idp('okta', { default: true, provisioning: 'scim' }), idp('entra', { domains: ['entra.test'] })],
    pac: { gateways: ['proxy-1.lab.test:9400', 'proxy-2.lab.test:9400'], locations: [{ name: 'lab', gateways: ['proxy-lab.lab.test:3128'] }] },
  }),
);
t.teardown(async () => {
  await tg.close();
  rmSync(certDir, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; text: string; type: string | null }> {
  const r = await fetch(`http://127.0.0.1:${tg.controlPort}${path}`, {
    method,
    headers: { ...tg.admin, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // XML (SP metadata): the text is what the test reads.
  }
  return { status: r.status, body: parsed, text, type: r.headers.get('content-type') };
}

// The directory as SCIM (okta) and JIT sign-ins (entra) would have filled it.
const dir = new Directory({ store: tg.tg.store.backend });
const person = (userName: string, department: string, active = true) => ({ schemas: [SCHEMA_USER, SCHEMA_ENTERPRISE_USER], userName, displayName: userName.split('@')[0]!.toUpperCase(), active, [SCHEMA_ENTERPRISE_USER]: { department } });
const ann = await dir.createUser('1/okta', person('ann@example.test', 'Finance'), { source: 'scim' });
const ben = await dir.createUser('1/okta', person('ben@example.test', 'Legal', false), { source: 'scim' });
await dir.createUser('1/okta', person('cat@example.test', 'Finance'), { source: 'scim' });
const dan = await dir.createUser('1/entra', person('dan@entra.test', 'Finance'), { source: 'jit' });
await dir.createUser('1/entra', person('eve@entra.test', 'Sales'), { source: 'jit' });
await dir.createGroup('1/okta', { schemas: [SCHEMA_GROUP], displayName: 'Finance Team', members: [{ value: ann.id }, { value: ben.id }] }, { source: 'scim' });
await dir.createGroup('1/entra', { schemas: [SCHEMA_GROUP], displayName: 'Finance Team', members: [{ value: dan.id }] }, { source: 'jit' });
await dir.createGroup('1/entra', { schemas: [SCHEMA_GROUP], displayName: 'Sales', members: [] }, { source: 'jit' });

type UserRow = { idp: string; userName: string; source: string; active: boolean; department: string; groups: string[] };
const names = (r: { body: Record<string, unknown> }) => (r.body.users as UserRow[]).map((u) => u.userName).sort();

t.test('the user list covers every IdP, filtered by name, group, department, source and state', async (t) => {
  const all = await api('GET', '/api/users');
  t.equal(all.status, 200);
  t.equal(all.body.total, 5);
  t.same(names(all), ['ann@example.test', 'ben@example.test', 'cat@example.test', 'dan@entra.test', 'eve@entra.test']);
  t.match((all.body.users as UserRow[]).find((u) => u.userName === 'dan@entra.test'), { idp: 'entra', source: 'jit', department: 'Finance', groups: ['Finance Team'] });
  const cases: [string, string[]][] = [
    ['idp=okta', ['ann@example.test', 'ben@example.test', 'cat@example.test']],
    ['name=AN', ['ann@example.test', 'dan@entra.test']],
    ['group=finance team', ['ann@example.test', 'ben@example.test', 'dan@entra.test']],
    ['group=finance team&idp=entra', ['dan@entra.test']],
    ['department=finance', ['ann@example.test', 'cat@example.test', 'dan@entra.test']],
    ['source=jit', ['dan@entra.test', 'eve@entra.test']],
    ['active=false', ['ben@example.test']],
    ['active=true&department=finance&source=scim', ['ann@example.test', 'cat@example.test']],
    ['name=nobody', []],
  ];
  for (const [q, want] of cases) {
    const r = await api('GET', `/api/users?${q}`);
    t.same(names(r), want, q);
    t.equal(r.body.total, want.length, `${q}: total counts the matches`);
  }
});

t.test('pages of the user list cover every match once, across IdPs, filtered or not', async (t) => {
  for (const filter of ['', '&department=finance']) {
    const seen: string[] = [];
    for (let offset = 0; offset < 6; offset += 2) {
      const r = await api('GET', `/api/users?limit=2&offset=${offset}${filter}`);
      t.ok((r.body.users as UserRow[]).length <= 2);
      t.equal(r.body.offset, offset);
      seen.push(...(r.body.users as UserRow[]).map((u) => `${u.idp}:${u.userName}`));
    }
    t.equal(new Set(seen).size, seen.length, `no row twice (${filter || 'no filter'})`);
    t.equal(seen.length, filter === '' ? 5 : 3, `every row once (${filter || 'no filter'})`);
  }
});

t.test('groups list by name and source; bad filters and unknown IdPs are named', async (t) => {
  const g = await api('GET', '/api/groups?name=finance');
  t.same((g.body.groups as { idp: string; displayName: string; members: number }[]).map((x) => [x.idp, x.displayName, x.members]).sort(), [
    ['entra', 'Finance Team', 1],
    ['okta', 'Finance Team', 2],
  ]);
  t.equal((await api('GET', '/api/groups?source=jit')).body.total, 2);
  t.match(await api('GET', '/api/users?source=ldap'), { status: 400, body: { error: { code: 'bad_filter' } } });
  t.match(await api('GET', '/api/users?active=maybe'), { status: 400, body: { error: { code: 'bad_filter' } } });
  t.match(await api('GET', '/api/users?idp=nope'), { status: 404, body: { error: { code: 'unknown_idp' } } });
});

t.test('the IdP page: SP metadata, SCIM base URL and token rotation, certificate expiry', async (t) => {
  const r = await api('GET', '/api/idps');
  t.equal(r.status, 200);
  const idps = r.body.idps as Record<string, any>[];
  t.same(idps.map((i) => i.id), ['okta', 'entra']);
  const okta = idps[0]!;
  t.match(okta, { provisioning: 'scim', default: true, entityId: 'urn:okta', sp: { entityId: 'https://login.tollgate.test/sfc_sso', acsUrl: 'http://login.tollgate.test/sfc_sso', metadataUrl: 'http://login.tollgate.test/saml/metadata/okta' } });
  t.same(okta.scim, { baseUrl: 'http://scim.tollgate.test/1/okta/scim', tenant: '1/okta', tokenCreatedAt: null }, 'no SCIM token yet');
  t.equal(idps[1]!.scim, null, 'a JIT IdP has no SCIM');
  t.ok(Date.parse(okta.certificate.notAfter) > Date.now(), 'certificate expiry');
  t.ok(okta.certificate.daysLeft > 30 && okta.certificate.expiring === false);
  t.match(okta.certificate.fingerprintSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  const meta = await api('GET', '/api/idps/metadata?idp=entra');
  t.equal(meta.status, 200);
  t.equal(meta.type, 'application/samlmetadata+xml');
  t.match(meta.text, 'entityID="https://login.tollgate.test/sfc_sso"');

  const rot = await api('POST', '/api/idps/scim-token', { idp: 'okta' });
  t.equal(rot.status, 200);
  t.match(rot.body, { idp: 'okta', tenant: '1/okta', baseUrl: 'http://scim.tollgate.test/1/okta/scim' });
  const scim = new ScimClient(`http://127.0.0.1:${tg.controlPort}/1/okta/scim/v2`, String(rot.body.token));
  t.equal((await scim.get('/Users')).status, 200, 'the new token provisions');
  const after = (await api('GET', '/api/idps')).body.idps as Record<string, any>[];
  t.ok(Date.now() - Date.parse(after[0]!.scim.tokenCreatedAt) < 60_000, 'the page shows when the token was made');
  t.notMatch(JSON.stringify(tg.app.lines), String(rot.body.token), 'the token is never logged');
  t.match(await api('POST', '/api/idps/scim-token', { idp: 'entra' }), { status: 409, body: { error: { code: 'scim_not_enabled' } } });
  t.match(await api('POST', '/api/idps/scim-token', {}), { status: 404, body: { error: { code: 'unknown_idp' } } });
});

t.test('locations and exemptions as the active config has them', async (t) => {
  const l = await api('GET', '/api/locations');
  t.equal(l.status, 200);
  t.match(l.body, { version: 1, unknownSources: 'deny', locations: [{ name: 'lab', ips: ['127.0.0.0/26', '127.0.0.128/25', '::1'], enforceAuthentication: false, sublocations: [{ name: 'guest' }], idps: [] }] });
  const e = await api('GET', '/api/exemptions');
  t.same(e.body, { version: 1, hosts: [], urls: [], idpSsoHosts: [{ idp: 'okta', host: 'okta.example.test' }, { idp: 'entra', host: 'entra.example.test' }] }, "every IdP's SSO host is exempt");
});

t.test('force re-authentication wants a user or everyone, never an empty body', async (t) => {
  t.match(await api('POST', '/api/reauth', {}), { status: 400, body: { error: { code: 'bad_request' } } });
  t.match(await api('POST', '/api/reauth', { user: 'ann@example.test', everyone: true }), { status: 400 });
  t.match(await api('POST', '/api/reauth', { user: 'ann@example.test' }), { status: 200, body: { user: 'ann@example.test', revoked: 0 } });
  t.match(await api('POST', '/api/reauth', { everyone: true }), { status: 200, body: { user: null, revoked: 0 } });
});

t.test('the admin API is not served through the proxy', async (t) => {
  for (const url of ['http://ip.tollgate.test/api/users', 'http://tollgate.test/api/users', 'http://login.tollgate.test/api/sessions', 'http://scim.tollgate.test/api/idps']) {
    const r = await viaProxy(tg.proxyPort, url, { headers: { ...tg.admin, accept: 'application/json' } });
    t.equal(r.status, 404, url);
    t.notMatch(r.body, 'ann@example.test', `${url}: nothing listed`);
  }
});

t.test('blocked transactions are counted by reason, in /metrics and in the node list the dashboard reads', async (t) => {
  for (let i = 0; i < 3; i++) t.equal((await viaProxy(tg.proxyPort, 'http://www.example.test/', { localAddress: '127.0.0.66' })).status, 403, 'a source in no location');
  t.equal((await viaProxy(tg.proxyPort, `http://127.0.0.1:${tg.proxyPort}/`)).status, 403, 'a loop');
  const metrics = await (await fetch(`http://127.0.0.1:${tg.controlPort}/metrics`)).text();
  t.match(metrics, /^tollgate_blocked_total\{reason="unknown_source"\} 3$/m);
  t.match(metrics, /^tollgate_blocked_total\{reason="loop_detected"\} 1$/m);
  const nodes = (await api('GET', '/api/nodes')).body.nodes as { lastHour: { blocked: number; blockedBy: Record<string, number> } }[];
  t.equal(nodes.length, 1);
  t.match(nodes[0]!.lastHour.blockedBy, { unknown_source: 3, loop_detected: 1 }, 'the last hour by reason');
  t.ok(nodes[0]!.lastHour.blocked >= 4);
});

t.test('the PAC preview is the text the PAC routes serve', async (t) => {
  const lab = await api('GET', '/api/pac?location=lab');
  t.equal(lab.status, 200, lab.text);
  t.match(lab.body, { location: 'lab', pac: 'location "lab"', source: 'generated', gateways: ['proxy-lab.lab.test:3128'] });
  const served = await (await fetch(`http://127.0.0.1:${tg.controlPort}/proxy.pac`)).text();
  t.equal(lab.body.text, served, 'the same text /proxy.pac serves a client at that location');
  t.match(String(lab.body.text), 'PROXY proxy-lab.lab.test:3128');
  const dflt = await api('GET', '/api/pac');
  t.match(dflt.body, { location: null, pac: 'default', gateways: ['proxy-1.lab.test:9400', 'proxy-2.lab.test:9400'] });
  t.equal(dflt.body.text, await (await fetch(`http://127.0.0.1:${tg.controlPort}/elsewhere.pac`)).text(), 'without a location: the default PAC');
  t.match(String(dflt.body.text), 'PROXY proxy-1.lab.test:9400; PROXY proxy-2.lab.test:9400');
  t.equal((await api('GET', '/api/pac?location=nowhere')).status, 404);
  t.equal((await api('GET', '/api/pac?clientIp=not-an-ip')).status, 400);
  const anonymous = await fetch(`http://127.0.0.1:${tg.controlPort}/api/pac`);
  t.equal(anonymous.status, 401, 'behind the admin token like every /api route');
});
