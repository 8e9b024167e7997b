import t from 'tap';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { ConfigError } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Sessions } from '../../src/sessions/session.js';
import { startTestTollgate, testConfig, viaProxy, LogSink } from '../helpers/tollgate.js';
import { startTollgate } from '../../src/main.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-idp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const good = makeSigningPair('Lab IdP');
writeFileSync(join(dir, 'okta.pem'), good.certPem);
writeFileSync(join(dir, 'expired.pem'), makeSigningPair('Old IdP', new Date(Date.now() - 86_400_000)).certPem);
writeFileSync(join(dir, 'not-a-cert.pem'), 'hello, I am not a certificate\n');

const idp = (extra: Record<string, unknown> = {}) => ({
  id: 'okta',
  name: 'Okta',
  ssoUrl: 'https://example.okta.test/app/sso/saml',
  certificate: join(dir, 'okta.pem'),
  entityId: 'http://www.okta.com/exk1',
  default: true,
  provisioning: 'scim' as const,
  ...extra,
});

function call(port: number, method: string, path: string, opts: { body?: unknown; token?: string; host?: string } = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: {
          ...(opts.host ? { host: opts.host } : {}),
          ...(payload ? { 'content-type': 'application/scim+json', 'content-length': Buffer.byteLength(payload) } : {}),
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        },
      },
      (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: b, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

t.test('activation checks IdP certificates and mappings, reporting every problem', async (t) => {
  const cases: [string, Partial<ConfigInput>, RegExp[]][] = [
    ['not a PEM certificate', { idps: [idp({ certificate: join(dir, 'not-a-cert.pem') })] }, [/idps\[0\]\.certificate: .*PEM/i]],
    ['expired certificate', { idps: [idp({ certificate: join(dir, 'expired.pem') })] }, [/idps\[0\]\.certificate: .*(expired|not yet valid)/i]],
    ['missing file', { idps: [idp({ certificate: join(dir, 'nope.pem') })] }, [/idps\[0\]\.certificate: cannot read .*ENOENT/]],
    ['a second IdP without domains, and two defaults', { idps: [idp(), idp({ id: 'entra' }), idp({ id: 'third', default: false })] }, [/idps\[2\]\.domains: .*at least one authentication domain/, /idps: exactly one IdP must be the default \(found 2\)/]],
    ['unknown location mapped', { idps: [idp({ locations: ['Mars'] })] }, [/idps\[0\]\.locations\[0\]: no location is named "Mars"/]],
    ['JIT and SCIM are one setting, never both', { idps: [idp({ provisioning: 'both' })] }, [/idps\[0\]\.provisioning: Invalid option/]],
  ];
  for (const [name, extra, patterns] of cases) {
    const err = await startTollgate({ config: testConfig(join(dir, 'data-bad'), extra), accessLog: new LogSink(), appLog: new LogSink() }).then(
      async (tg) => {
        await tg.shutdown();
        return null;
      },
      (e: unknown) => e,
    );
    t.ok(err instanceof ConfigError, `${name}: refused`);
    for (const p of patterns) t.ok((err as ConfigError).errors.some((e) => p.test(e)), `${name}: ${p} in ${JSON.stringify((err as ConfigError).errors)}`);
  }
});

t.test('SP metadata, SCIM through the proxy and on the control listener, deprovisioning revokes sessions', async (t) => {
  const tg = await startTestTollgate((d) => testConfig(d, { orgId: '37146169', idps: [idp()] }));
  t.teardown(() => tg.close());

  const meta = await viaProxy(tg.proxyPort, 'http://login.tollgate.test/saml/metadata/okta');
  t.equal(meta.status, 200);
  t.match(meta.body, 'entityID="https://login.tollgate.test/sfc_sso"');
  t.match(meta.body, 'http://login.tollgate.test/sfc_sso');
  t.match((await call(tg.controlPort, 'GET', '/saml/metadata/okta')).body, 'entityID="https://login.tollgate.test/sfc_sso"', 'metadata on the control listener too');

  const gen = await call(tg.controlPort, 'POST', '/admin/scim/token?idp=okta', { token: tg.adminToken });
  t.equal(gen.status, 200);
  const { token, baseUrl, tenant } = JSON.parse(gen.body) as { token: string; baseUrl: string; tenant: string };
  t.equal(baseUrl, 'http://scim.tollgate.test/37146169/okta/scim');
  t.equal(tenant, '37146169/okta');
  t.notMatch(tg.app.raw + tg.access.raw, token, 'the token is never logged');

  const noAuth = await viaProxy(tg.proxyPort, `${baseUrl}/Users`);
  t.equal(noAuth.status, 401);

  // Okta creates a user through the proxy's own scim.<cloud> host.
  const created = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const payload = JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'alice@example.test', name: { givenName: 'Alice', familyName: 'Doe' }, active: true, password: 'pw-not-kept' });
    const req = http.request(
      { host: '127.0.0.1', port: tg.proxyPort, method: 'POST', path: `${baseUrl}/Users`, agent: false, headers: { 'content-type': 'application/scim+json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  t.equal(created.status, 201, created.body);
  const user = JSON.parse(created.body) as { id: string };

  // The same tenant on the control listener (where an IdP reaches Tollgate directly).
  const listed = await call(tg.controlPort, 'GET', `/37146169/okta/scim/v2/Users?filter=${encodeURIComponent('userName eq "ALICE@example.test"')}`, { token });
  t.equal(JSON.parse(listed.body).totalResults, 1);

  const users = JSON.parse((await call(tg.controlPort, 'GET', '/admin/users?idp=okta', { token: tg.adminToken })).body) as { total: number; users: { userName: string; source: string; active: boolean }[] };
  t.equal(users.total, 1);
  t.match(users.users[0], { userName: 'alice@example.test', source: 'scim', active: true });

  // A session for this user, as a login will create; deactivation must revoke it.
  const sessions = new Sessions(tg.tg.store);
  const sess = await sessions.create({ userId: user.id, loginName: 'alice@example.test', displayName: 'Alice', department: '', groups: [], idp: 'okta', location: 'lab', clientIp: '127.0.0.2', authMethod: 'saml' }, 3600_000);
  const patched = await call(tg.controlPort, 'PATCH', `/37146169/okta/scim/v2/Users/${user.id}`, {
    token,
    body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false } }] },
  });
  t.equal(patched.status, 200, patched.body);
  t.equal(await sessions.get(sess.id), null, 'the session is gone');

  const rotated = await call(tg.controlPort, 'POST', '/admin/scim/token?idp=okta', { token: tg.adminToken });
  t.equal(rotated.status, 200);
  t.equal((await call(tg.controlPort, 'GET', '/37146169/okta/scim/v2/Users', { token })).status, 401, 'the old token stops working at once');

  const other = await call(tg.controlPort, 'GET', '/99999/okta/scim/v2/Users', { token: (JSON.parse(rotated.body) as { token: string }).token });
  t.equal(other.status, 404, 'another org id is not a tenant');

  const m = await call(tg.controlPort, 'GET', '/metrics');
  t.match(m.body, /tollgate_scim_operations_total\{op="create",resource="Users",status="201"\} 1/);
});
