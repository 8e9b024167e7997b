/**
 * The directory from the command line: a Tollgate process, users and groups provisioned by SCIM over
 * HTTP and by a JIT sign-in, then `tollgate users|groups|scim token` run as child processes.
 *
 *   SCIM client -> control listener /1/okta/scim/v2 -> Directory <- ACS (JIT, IdP "lab") <- lab IdP
 *   tollgate users|groups|scim token --config ctl.yaml -> control listener /admin/* -> Directory, tokens
 */
import t from 'tap';
import { runCli as run } from '../helpers/cli.js';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP, SCHEMA_USER } from '../../src/scim/attributes.js';
import { SCIM_ERROR_SCHEMA } from '../../src/scim/errors.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { startNode } from '../helpers/node.js';
import { startOrigin } from '../helpers/origin.js';
import { ScimClient } from '../helpers/scim.js';
import { controlCall, viaProxy } from '../helpers/tollgate.js';

t.setTimeout(90_000);

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-dir-'));
const origin = await startOrigin();
const lab = await startLabIdpFixture({ id: 'lab' });
const okta = makeSigningPair('Okta');
writeFileSync(join(dir, 'okta.pem'), okta.certPem);
const node = await startNode(dir, 'node-cli', {
  store: { type: 'embedded', path: join(dir, 'data') },
  logging: { level: 'info', accessLog: join(dir, 'access.log') },
  limits: { shutdownGraceMs: 1000 },
  locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true }],
  hosts: { 'www.origin-a.test': '127.0.0.1' },
  // The SCIM rate limit (5/s by default) is tested elsewhere; here it would only make provisioning wait.
  idps: [
    lab.config({ domains: ['example.com'] }),
    { id: 'okta', name: 'Okta', ssoUrl: 'https://example.okta.test/app/sso/saml', certificate: join(dir, 'okta.pem'), entityId: 'http://www.okta.com/exk1', domains: ['example.test'], provisioning: 'scim', scimRateLimit: 0 },
  ],
});
t.teardown(async () => {
  await node.stop();
  await Promise.all([lab.close(), origin.close()]);
  rmSync(dir, { recursive: true, force: true });
});

// The node's own config listens on port 0; the CLI finds the control listener through this file.
// It names the node's store too: `tollgate admin token` writes there, and the token file lies beside it.
const ctl = join(dir, 'ctl.yaml');
writeFileSync(ctl, `listeners: { control: 127.0.0.1:${node.controlPort} }\nstore: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }\n`);


/** listing parses `tollgate users|groups` output: a count line, then one JSON row per line, keyed by name. */
function listing(stdout: string, key: 'userName' | 'displayName'): { header: string; rows: Map<string, Record<string, unknown>> } {
  const [header = '', ...lines] = stdout.trimEnd().split('\n');
  const rows = new Map<string, Record<string, unknown>>();
  for (const line of lines) {
    const row = JSON.parse(line) as Record<string, unknown>;
    rows.set(String(row[key]), row);
  }
  return { header, rows };
}

const sorted = (v: unknown): string[] => [...(v as string[])].sort();

/** The bearer token the SCIM subtests provision with; the rotation test replaces it. */
let token = '';
const scimBase = `http://127.0.0.1:${node.controlPort}/1/okta/scim/v2`;

t.test('admin token writes a mode-0600 file beside the data directory, which the other commands present', async (t) => {
  const file = join(dir, 'data.admin-token');
  const before = await run(['users', '--idp', 'okta', '--config', ctl]);
  t.equal(before.code, 1, 'no token file yet');
  t.equal(before.stderr, `no admin token at ${file}: create one with "tollgate admin token" (same --config)\n`);

  const made = await run(['admin', 'token', '--config', ctl]);
  t.equal(made.code, 0, made.stderr);
  t.equal(made.stdout, '', 'the token is not printed');
  t.equal(statSync(file).mode & 0o777, 0o600, 'mode 0600');
  const first = readFileSync(file, 'utf8').trim();
  t.match(first, /^tga\.admin\.[A-Za-z0-9_-]{43}$/, 'a token named "admin"');
  t.equal((await controlCall(node.controlPort, 'GET', '/admin/users?idp=okta', { authorization: `Bearer ${first}` })).status, 200, "the file's token opens the admin API");
  t.equal((await run(['users', '--idp', 'okta', '--config', ctl])).code, 0, 'and the CLI presents it');

  // As ssh does with a key, a token file other users can read is refused, not used.
  chmodSync(file, 0o644);
  const wide = await run(['users', '--idp', 'okta', '--config', ctl]);
  t.equal(wide.code, 1);
  t.equal(wide.stderr, `the admin token at ${file} is open to other users (mode 0644): run "chmod 600 ${file}"\n`);

  // Rotation: a new token for the name replaces the old one on the node (within a second: another process made it).
  const again = await run(['admin', 'token', '--config', ctl]);
  t.equal(again.code, 0, again.stderr);
  t.equal(statSync(file).mode & 0o777, 0o600, 'rewritten 0600 over the wider file');
  const second = readFileSync(file, 'utf8').trim();
  t.not(second, first);
  let status = 0;
  for (const end = Date.now() + 2000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    status = (await controlCall(node.controlPort, 'GET', '/admin/users?idp=okta', { authorization: `Bearer ${first}` })).status;
    if (status === 401) break;
  }
  t.equal(status, 401, 'the replaced token is refused');
  t.equal((await controlCall(node.controlPort, 'GET', '/admin/users?idp=okta', { authorization: `Bearer ${second}` })).status, 200);

  // --print is for another holder: stdout only, under its own name; the file and the "admin" token stay.
  const ops = await run(['admin', 'token', '--name', 'ops', '--print', '--config', ctl]);
  t.equal(ops.code, 0, ops.stderr);
  t.match(ops.stdout, /^tga\.ops\.[A-Za-z0-9_-]{43}\n$/);
  t.equal(readFileSync(file, 'utf8').trim(), second, 'the file is untouched');
  t.equal((await controlCall(node.controlPort, 'GET', '/admin/users?idp=okta', { authorization: `Bearer ${ops.stdout.trim()}` })).status, 200);
  t.equal((await controlCall(node.controlPort, 'GET', '/admin/users?idp=okta', { authorization: `Bearer ${second}` })).status, 200, 'names keep their own tokens');
  const badName = await run(['admin', 'token', '--name', 'Not OK', '--config', ctl]);
  t.equal(badName.code, 1);
  t.match(badName.stderr, 'must be 1-32 lower-case letters');
  t.notMatch(JSON.stringify(node.lines), second.slice(10), 'no admin token is ever logged');
});

t.test('users and groups list SCIM and JIT provisioning with source, state, department and groups', async (t) => {
  const gen = await controlCall(node.controlPort, 'POST', '/admin/scim/token?idp=okta', node.admin);
  t.equal(gen.status, 200, gen.body);
  token = (JSON.parse(gen.body) as { token: string }).token;
  const scim = new ScimClient(scimBase, token);

  const user = (userName: string, department: string) => ({
    schemas: [SCHEMA_USER, SCHEMA_ENTERPRISE_USER],
    userName,
    active: true,
    [SCHEMA_ENTERPRISE_USER]: { department },
  });
  const dana = await scim.post('/Users', user('dana@example.test', 'Finance'));
  t.equal(dana.status, 201, dana.text);
  const erin = await scim.post('/Users', user('erin@example.test', 'Legal'));
  t.equal(erin.status, 201, erin.text);
  const finance = await scim.post('/Groups', { schemas: [SCHEMA_GROUP], displayName: 'Finance Team', members: [{ value: dana.body.id }] });
  t.equal(finance.status, 201, finance.text);
  const auditors = await scim.post('/Groups', { schemas: [SCHEMA_GROUP], displayName: 'Auditors' });
  t.equal(auditors.status, 201, auditors.text);
  // Group Push adds a member later, by PATCH (RFC 7644 §3.5.2.1).
  const pushed = await scim.patch(`/Groups/${auditors.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: dana.body.id }, { value: erin.body.id }] }] });
  t.ok(pushed.status === 200 || pushed.status === 204, `group push: ${pushed.status} ${pushed.text}`);
  const off = await scim.patch(`/Users/${erin.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
  t.equal(off.status, 200, off.text);

  // One JIT user: alice signs in at the lab IdP (example.com), whose provisioning is jit.
  const alice = new FlowClient(node.proxyPort, '127.0.0.12');
  const signed = await alice.signIn(`http://www.origin-a.test:${origin.port}/hello`, 'alice@example.com', 'alice-pw');
  t.equal(signed.reply.status, 200, 'alice signed in');
  t.ok(signed.idpPage.url.startsWith(lab.idp.ssoUrl), 'at the lab IdP');

  const [oktaUsers, oktaGroups, labUsers, labGroups] = await Promise.all([
    run(['users', '--idp', 'okta', '--config', ctl]),
    run(['groups', '--idp', 'okta', '--config', ctl]),
    run(['users', '--idp', 'lab', '--config', ctl]),
    run(['groups', '--idp', 'lab', '--config', ctl]),
  ]);
  for (const r of [oktaUsers, oktaGroups, labUsers, labGroups]) t.equal(r.code, 0, r.stderr);

  const u = listing(oktaUsers.stdout, 'userName');
  t.equal(u.header, '2 of 2 users (IdP okta)');
  t.match(u.rows.get('dana@example.test'), { source: 'scim', active: true, department: 'Finance' });
  t.same(sorted(u.rows.get('dana@example.test')?.groups), ['Auditors', 'Finance Team'], "dana's groups, from both groups' membership");
  t.match(u.rows.get('erin@example.test'), { source: 'scim', active: false, department: 'Legal' }, 'the deactivated user is listed as inactive');
  t.same(u.rows.get('erin@example.test')?.groups, ['Auditors']);

  const g = listing(oktaGroups.stdout, 'displayName');
  t.equal(g.header, '2 of 2 groups (IdP okta)');
  t.match(g.rows.get('Finance Team'), { source: 'scim', members: 1 });
  t.match(g.rows.get('Auditors'), { source: 'scim', members: 2 });

  const lu = listing(labUsers.stdout, 'userName');
  t.equal(lu.header, '1 of 1 users (IdP lab)', 'each IdP is its own directory');
  t.match(lu.rows.get('alice@example.com'), { source: 'jit', active: true, department: 'Engineering', displayName: 'Alice Example' });
  t.same(sorted(lu.rows.get('alice@example.com')?.groups), ['Engineering', 'VPN Users']);
  const lg = listing(labGroups.stdout, 'displayName');
  t.equal(lg.header, '2 of 2 groups (IdP lab)');
  t.match(lg.rows.get('Engineering'), { source: 'jit', members: 1 });
  t.match(lg.rows.get('VPN Users'), { source: 'jit', members: 1 });

  const json = await run(['users', '--idp', 'okta', '--json', '--config', ctl]);
  t.equal(json.code, 0, json.stderr);
  t.match(JSON.parse(json.stdout), { idp: 'okta', total: 2 }, '--json prints the admin answer whole');
});

t.test('scim token prints a new token and the base URL; the old token is refused at once', async (t) => {
  t.ok(token, 'the provisioning test made a token');
  const r = await run(['scim', 'token', '--idp', 'okta', '--config', ctl]);
  t.equal(r.code, 0, r.stderr);
  const baseUrl = /^SCIM base URL: +(\S+)$/m.exec(r.stdout)?.[1];
  const fresh = /^Bearer token: +(\S+)$/m.exec(r.stdout)?.[1];
  t.equal(baseUrl, 'http://scim.tollgate.test/1/okta/scim');
  t.match(r.stdout, /^Tenant \(Okta "Zscaler ID"\): 1\/okta$/m);
  t.ok(fresh && fresh.length >= 32, 'a token is printed');
  t.not(fresh, token, 'it is a new token');

  // The printed base URL, as the IdP would call it: through the proxy's scim.<cloud> host.
  const old = await viaProxy(node.proxyPort, `${baseUrl}/v2/Users`, { headers: { authorization: `Bearer ${token}`, accept: 'application/scim+json' } });
  t.equal(old.status, 401, 'the old token no longer works');
  const err = JSON.parse(old.body) as Record<string, unknown>;
  t.same(err.schemas, [SCIM_ERROR_SCHEMA], 'an RFC 7644 §3.12 error body');
  t.equal(err.status, '401', 'whose status is a string');
  t.type(err.detail, 'string');
  t.match(old.headers['www-authenticate'], /^Bearer /);
  const now = await viaProxy(node.proxyPort, `${baseUrl}/v2/Users`, { headers: { authorization: `Bearer ${fresh}`, accept: 'application/scim+json' } });
  t.equal(now.status, 200, now.body);
  t.equal(JSON.parse(now.body).totalResults, 2, 'the new token reads the same tenant');
  // And on the control listener, where an IdP may reach Tollgate directly.
  t.equal((await new ScimClient(scimBase, token).get('/Users')).status, 401);
  t.equal((await new ScimClient(scimBase, fresh).get('/Users')).status, 200);
  t.notMatch(JSON.stringify(node.lines), fresh!, 'the new token is printed, never logged');
  token = fresh!;
});

t.test('the CLI names a missing, unknown or non-SCIM IdP and exits non-zero', async (t) => {
  const [noIdp, noIdpGroups, unknown, jit] = await Promise.all([
    run(['scim', 'token', '--config', ctl]),
    run(['groups', '--config', ctl]),
    run(['users', '--idp', 'nope', '--config', ctl]),
    run(['scim', 'token', '--idp', 'lab', '--config', ctl]),
  ]);
  t.equal(noIdp.code, 2);
  t.equal(noIdp.stderr, 'tollgate scim token: --idp ID is required\n');
  t.equal(noIdp.stdout, '', 'no token is printed');
  t.equal(noIdpGroups.code, 2);
  t.equal(noIdpGroups.stderr, 'tollgate groups: --idp ID is required\n');
  t.equal(unknown.code, 1);
  t.equal(unknown.stderr, 'failed (404, unknown_idp): No IdP "nope" is configured (lab, okta).\n');
  t.equal(jit.code, 1);
  t.equal(jit.stderr, 'failed (409, scim_not_enabled): IdP "lab" uses jit provisioning; set provisioning: scim first.\n');
  t.equal((await new ScimClient(scimBase, token).get('/Users')).status, 200, 'the refused commands left the token alone');
});

t.test('GET /admin/groups lists and pages one IdP directory', async (t) => {
  const all = await controlCall(node.controlPort, 'GET', '/admin/groups?idp=okta', node.admin);
  t.equal(all.status, 200, all.body);
  const body = JSON.parse(all.body) as { idp: string; total: number; groups: { displayName: string; source: string; members: number; id: string }[] };
  t.equal(body.idp, 'okta');
  t.equal(body.total, 2);
  t.same(body.groups.map((g) => [g.displayName, g.source, g.members]).sort(), [
    ['Auditors', 'scim', 2],
    ['Finance Team', 'scim', 1],
  ]);
  const first = JSON.parse((await controlCall(node.controlPort, 'GET', '/admin/groups?idp=okta&limit=1', node.admin)).body) as typeof body;
  const second = JSON.parse((await controlCall(node.controlPort, 'GET', '/admin/groups?idp=okta&limit=1&offset=1', node.admin)).body) as typeof body;
  t.equal(first.total, 2);
  t.equal(first.groups.length, 1);
  t.equal(second.groups.length, 1);
  t.same([first.groups[0]!.id, second.groups[0]!.id].sort(), body.groups.map((g) => g.id).sort(), 'two pages of one cover both groups');

  const unknown = await controlCall(node.controlPort, 'GET', '/admin/groups?idp=nope', { ...node.admin, accept: 'application/json' });
  t.equal(unknown.status, 404);
  t.match(JSON.parse(unknown.body), { error: { code: 'unknown_idp' } });
});

t.test('the admin API answers only loopback-addressed requests that no web page sent, even with a good token', async (t) => {
  const port = node.controlPort;
  const allowed: [string, Record<string, string>][] = [
    ['no Host rewrite', {}],
    ['Host localhost', { host: `localhost:${port}` }],
    ['Host 127.0.0.2', { host: '127.0.0.2' }],
    ['Host [::1]', { host: `[::1]:${port}` }],
    ['Sec-Fetch-Site none (typed in the address bar)', { 'sec-fetch-site': 'none' }],
  ];
  for (const [name, headers] of allowed) {
    t.equal((await controlCall(port, 'GET', '/admin/groups?idp=okta', { ...node.admin, ...headers })).status, 200, name);
  }

  const refused: [string, Record<string, string>, string][] = [
    ['a rebound DNS name', { host: `rebind.attacker.test:${port}` }, 'admin_host'],
    ['a name that only starts like loopback', { host: '127.0.0.1.attacker.test' }, 'admin_host'],
    ['the cloud name', { host: 'tollgate.test' }, 'admin_host'],
    ['a cross-site Origin', { origin: 'http://attacker.test' }, 'admin_cross_site'],
    ['even a loopback Origin', { origin: `http://127.0.0.1:${port}` }, 'admin_cross_site'],
    ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }, 'admin_cross_site'],
    ['Sec-Fetch-Site same-site', { 'sec-fetch-site': 'same-site' }, 'admin_cross_site'],
  ];
  const endpoints: [string, string][] = [
    ['GET', '/admin/users?idp=okta'],
    ['GET', '/admin/groups?idp=okta'],
    ['POST', '/admin/scim/token?idp=okta'],
    ['POST', '/admin/reauth'],
    ['POST', '/admin/activate'],
  ];
  for (const [method, path] of endpoints) {
    for (const [name, headers, code] of refused) {
      const r = await controlCall(port, method, path, { accept: 'application/json', ...node.admin, ...headers });
      t.equal(r.status, 403, `${method} ${path}: ${name}`);
      t.match(JSON.parse(r.body), { error: { code } }, `${method} ${path}: ${name} -> ${code}`);
    }
  }
  t.equal((await new ScimClient(scimBase, token).get('/Users')).status, 200, 'refused token requests rotated nothing');
});
