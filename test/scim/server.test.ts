import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { openStore } from '../../src/sessions/open.js';
import type { Store } from '../../src/sessions/store.js';
import { startRedis } from '../helpers/redis.js';
import { isError, startScim, type Reply, type ScimClient } from '../helpers/scim.js';

/** TapTest is the type of a subtest's `t`. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const ERR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const newUser = (userName: string, extra: Record<string, unknown> = {}) => ({ schemas: [CORE], userName, active: true, ...extra });

/** rawRequest sends a request with full control over framing (chunked bodies, lying lengths). */
function rawRequest(url: string, opts: http.RequestOptions, write: (req: http.ClientRequest) => void): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, opts, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    write(req);
  });
}

t.test('authentication: bearer token per tenant, rotation at once', async (t) => {
  const h = await startScim();
  t.teardown(() => h.close());
  const okta = await h.client('acme/okta');
  const entra = await h.client('acme/entra');
  t.equal((await okta.get('/Users')).status, 200, 'the right token works');

  const none = await h.client('acme/okta', { token: null });
  const r1 = await none.get('/Users');
  isError(t, r1, 401, undefined, 'missing token');
  t.match(r1.headers.get('www-authenticate'), /^Bearer/);
  const r2 = await new (okta.constructor as typeof ScimClient)(okta.base, 'wrong-token').get('/Users');
  isError(t, r2, 401, undefined, 'wrong token');
  t.match(r2.headers.get('www-authenticate'), /error="invalid_token"/);
  const basic = await okta.get('/Users', { authorization: 'Basic Zm9vOmJhcg==' });
  isError(t, basic, 401, undefined, 'another scheme');

  const cross = await new (okta.constructor as typeof ScimClient)(okta.base, entra.token).get('/Users');
  isError(t, cross, 401, undefined, "another tenant's token");
  t.equal((await entra.get('/Users')).status, 200);

  const fresh = await h.tokens.generate('acme/okta');
  isError(t, await okta.get('/Users'), 401, undefined, 'generating a new token invalidates the old one at once');
  t.equal((await new (okta.constructor as typeof ScimClient)(okta.base, fresh).get('/Users')).status, 200);
  t.match(fresh, /^[A-Za-z0-9_-]{43,}$/, 'tokens are at least 32 bytes of base64url');
  await h.tokens.revoke('acme/okta');
  isError(t, await new (okta.constructor as typeof ScimClient)(okta.base, fresh).get('/Users'), 401, undefined, 'revoked');

  const unknown = await h.client('acme/nope');
  isError(t, await unknown.get('/Users'), 404, undefined, 'a tenant without SCIM is 404');
  const raw = await fetch(`${h.origin}/not-scim`);
  t.equal(raw.status, 404);

  const stored = new Database(`${h.dir}/tollgate.db`, { readonly: true });
  t.teardown(() => stored.close());
  const values = (stored.prepare('SELECT value FROM kv').all() as { value: string }[]).map((r) => r.value).join('\n');
  t.notOk(values.includes(fresh) || values.includes(entra.token as string), 'tokens are never stored in the clear');
  t.notOk(h.logs.text.includes(entra.token as string), 'nor logged');
});

t.test('errors use the SCIM error schema', async (t) => {
  const h = await startScim({ maxBodyBytes: 4096 });
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  const u = (await c.post('/Users', newUser('bjensen@example.com'))).body;
  const g = (await c.post('/Groups', { schemas: [GROUP], displayName: 'Tour Guides' })).body;

  isError(t, await c.post('/Users', '{"userName": '), 400, 'invalidSyntax', 'malformed JSON');
  isError(t, await c.post('/Users', '[1,2]'), 400, 'invalidSyntax', 'a body that is not an object');
  isError(t, await c.post('/Users', { schemas: [CORE] }), 400, 'invalidValue', 'userName is required');
  isError(t, await c.get('/Users?filter=userName%20eq'), 400, 'invalidFilter', 'invalid filter');
  isError(t, await c.get('/Users?filter=' + encodeURIComponent('bogus eq "x"')), 400, 'invalidFilter', 'unknown attribute in a filter');
  isError(t, await c.get('/Users/00000000-0000-7000-8000-000000000000'), 404, undefined, 'unknown id');
  isError(t, await c.delete('/Groups/nope'), 404, undefined, 'unknown group id');
  isError(t, await c.patch('/Users/nope', { schemas: [PATCH], Operations: [] }), 404, undefined, 'patch of an unknown id');
  const m1 = await c.req('DELETE', '/Users');
  isError(t, m1, 405, undefined, 'DELETE on a collection');
  t.equal(m1.headers.get('allow'), 'GET, POST');
  const m2 = await c.req('POST', '/Users/' + u.id, newUser('x'));
  isError(t, m2, 405, undefined, 'POST on a resource');
  t.equal(m2.headers.get('allow'), 'GET, PUT, PATCH, DELETE');
  isError(t, await c.req('PUT', '/ServiceProviderConfig', {}), 405, undefined, 'PUT on discovery');
  isError(t, await c.post('/Users', newUser('BJENSEN@example.com')), 409, 'uniqueness', 'duplicate userName in another case');
  isError(t, await c.post('/Groups', { displayName: 'tour guides' }), 409, 'uniqueness', 'duplicate displayName');
  isError(t, await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'urn:bogus:schema:attr', value: 1 }] }), 400, 'invalidPath', 'unknown schema in a PATCH path');
  isError(t, await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'nosuch', value: 1 }] }), 400, 'invalidPath', 'unknown attribute in a PATCH path');
  isError(t, await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'remove' }] }), 400, 'noTarget', 'remove without a path');
  isError(t, await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails[type eq "home" or type eq "x"].value', value: 'a@b' }] }), 400, 'noTarget', 'a filter that matches nothing and cannot seed');
  isError(t, await c.patch('/Users/' + u.id, { Operations: 'nope' }), 400, 'invalidSyntax', 'Operations not a list');
  isError(t, await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'id', value: 'mine' }] }), 400, 'mutability', 'id is read-only');
  const long = await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'streetAddress', value: 'x'.repeat(65) }] });
  isError(t, long, 400, 'invalidValue', 'Workflow Automation lengths');
  t.match(long.body.detail, /streetAddress/, 'the detail names the attribute');
  isError(t, await c.patch('/Groups/' + g.id, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: 'ghost' }] }] }), 400, 'invalidValue', 'unknown member id');
  isError(t, await c.get('/Users?count=ten'), 400, 'invalidValue', 'a count that is not an integer');
  isError(t, await c.post('/Bulk', { Operations: [] }), 501, undefined, 'bulk is not supported');
  isError(t, await c.get('/Nothing'), 404, undefined, 'unknown endpoint');
  isError(t, await c.put('/Users/' + u.id, newUser('bjensen@example.com'), { 'if-match': 'W/"999"' }), 412, undefined, 'If-Match of another version');

  isError(t, await c.post('/Users', newUser('x'), { 'content-type': 'text/plain' }), 415, undefined, 'text/plain');
  isError(t, await c.post('/Users', newUser('x'), { 'content-type': 'application/x-www-form-urlencoded' }), 415, undefined, 'a form');
  isError(t, await c.post('/Users', newUser('x'), { 'content-type': 'application/json; charset=iso-8859-1' }), 415, undefined, 'not UTF-8');
  t.equal((await c.post('/Users', newUser('json@x'), { 'content-type': 'application/json; charset=utf-8' })).status, 201, 'application/json works');
  t.equal(
    (await c.patch('/Users/' + u.id, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: 'Guide' }] }, { 'content-type': 'application/json-patch+json' })).status,
    200,
    'application/json-patch+json works',
  );

  const big = await c.post('/Users', newUser('big@x', { title: 'x'.repeat(5000) }));
  isError(t, big, 413, undefined, 'a body over the limit (Content-Length)');
  t.equal(big.headers.get('connection'), 'close');
  const chunked = await rawRequest(`${c.base}/Users`, { method: 'POST', headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/scim+json', 'transfer-encoding': 'chunked' } }, (req) => {
    req.write('{"userName":"chunky@x","title":"');
    req.write('y'.repeat(3000));
    req.write('y'.repeat(3000));
    req.end('"}');
  });
  t.equal(chunked.status, 413, 'a chunked body that grows over the limit');
  t.equal(JSON.parse(chunked.body).status, '413');
  t.equal((await c.get('/Users?filter=' + encodeURIComponent('userName eq "chunky@x"'))).body.totalResults, 0, 'and nothing was created');

  const slow = await startScim({ bodyTimeoutMs: 200 });
  t.teardown(() => slow.close());
  const sc = await slow.client('acme/okta');
  const timedOut = await rawRequest(`${sc.base}/Users`, { method: 'POST', headers: { authorization: `Bearer ${sc.token}`, 'content-type': 'application/json', 'content-length': '100' } }, (req) => {
    req.write('{"userName":');
  });
  t.equal(timedOut.status, 408, 'a body that never finishes times out');

  for (const op of h.operations) t.type(op.status, 'number');
  t.ok(h.operations.some((o) => o.op === 'create' && o.resource === 'Users' && o.status === 409), 'operations are reported with their status');
  const logged = h.logs.lines.filter((l) => l['msg'] === 'scim');
  t.ok(logged.some((l) => l['op'] === 'patch' && l['outcome'] === 'invalidPath' && l['tenant'] === 'acme/okta'), 'the log has tenant, op and outcome');
});

t.test('paging: 1-based startIndex, clamped count, stable order, empty page past the end', async (t) => {
  const h = await startScim();
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  for (let i = 0; i < 7; i++) t.equal((await c.post('/Users', newUser(`user${i}@x`, { title: i % 2 ? 'odd' : 'even' }))).status, 201);
  const all = (await c.get('/Users')).body;
  t.match(all, { schemas: [LIST], totalResults: 7, itemsPerPage: 7, startIndex: 1 });
  const ids = all.Resources.map((r: { id: string }) => r.id);
  t.same(ids, [...ids].sort(), 'listed in stable id order');

  const pages: string[] = [];
  for (let s = 1; s <= 7; s += 3) {
    const p = (await c.get(`/Users?startIndex=${s}&count=3`)).body;
    t.equal(p.startIndex, s);
    t.equal(p.totalResults, 7);
    pages.push(...p.Resources.map((r: { id: string }) => r.id));
  }
  t.same(pages, ids, 'pages join up with no gap or repeat');
  const past = (await c.get('/Users?startIndex=50&count=3')).body;
  t.match(past, { totalResults: 7, itemsPerPage: 0, startIndex: 50, Resources: [] }, 'an empty page past the end');
  const zero = (await c.get('/Users?startIndex=0&count=2')).body;
  t.match(zero, { startIndex: 1, itemsPerPage: 2 }, 'startIndex below 1 is 1');
  t.same(zero.Resources.map((r: { id: string }) => r.id), ids.slice(0, 2));
  t.match((await c.get('/Users?startIndex=-5&count=-1')).body, { startIndex: 1, itemsPerPage: 0, totalResults: 7, Resources: [] }, 'a negative count is 0');
  t.match((await c.get('/Users?count=100000')).body, { itemsPerPage: 7 }, 'a huge count is capped');
  for (const k of ['totalResults', 'itemsPerPage', 'startIndex']) t.type(all[k], 'number', `${k} is an integer`);

  const odd = (await c.get('/Users?count=1&startIndex=2&filter=' + encodeURIComponent('title eq "odd"'))).body;
  t.match(odd, { totalResults: 3, itemsPerPage: 1, startIndex: 2 }, 'a scanned filter pages its matches');
  t.equal(odd.Resources[0].id, ids[3]);
  const byName = (await c.get('/Users?filter=' + encodeURIComponent('USERNAME eq "USER3@X"'))).body;
  t.match(byName, { totalResults: 1, Resources: [{ userName: 'user3@x' }] }, 'userName eq ignores case');
  t.equal((await c.get('/Users?startIndex=2&filter=' + encodeURIComponent('userName eq "user3@x"'))).body.itemsPerPage, 0);

  const search = await c.post('/Users/.search', { schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'], filter: 'title eq "even"', startIndex: 1, count: 2, attributes: ['userName'] });
  t.equal(search.status, 200, 'POST .search works');
  t.match(search.body, { totalResults: 4, itemsPerPage: 2 });
  t.same(Object.keys(search.body.Resources[0]).sort(), ['id', 'schemas', 'userName']);
  t.equal(search.headers.get('content-type'), 'application/scim+json');
});

t.test('request targets: absolute form, doubled slashes and parameter names in any case', async (t) => {
  const h = await startScim();
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  for (let i = 0; i < 3; i++) await c.post('/Users', newUser(`t${i}@x`));
  const auth = { authorization: `Bearer ${c.token}` };
  const absolute = await rawRequest(`${h.origin}/`, { method: 'GET', path: `http://scim.tollgate.test/acme/okta/scim/v2/Users?count=1`, headers: auth }, (r) => r.end());
  t.equal(absolute.status, 200, 'an absolute-form target (through the proxy) is served');
  t.equal(JSON.parse(absolute.body).itemsPerPage, 1);
  const doubled = await rawRequest(`${h.origin}/`, { method: 'GET', path: `//acme/okta/scim/v2/Users`, headers: auth }, (r) => r.end());
  t.equal(doubled.status, 404, 'a path starting with // is not read as a host');
  const p = (await c.get('/Users?STARTINDEX=2&Count=1&ATTRIBUTES=userName')).body;
  t.match(p, { startIndex: 2, itemsPerPage: 1, totalResults: 3 });
  t.same(Object.keys(p.Resources[0]).sort(), ['id', 'schemas', 'userName']);
  t.equal((await c.get('/users?count=1')).status, 200, 'endpoint names ignore case');
});

t.test('attributes and excludedAttributes; password never returned or stored', async (t) => {
  const h = await startScim();
  t.teardown(() => h.close());
  const c = await h.client('acme/okta', { v2: false });
  const created = await c.post('/Users', newUser('amy@x', {
    password: 'Secr3t!pass',
    name: { givenName: 'Amy', familyName: 'Pond' },
    emails: [{ value: 'amy@x', type: 'work', primary: true }],
    [ENT]: { department: 'Travel' },
  }));
  t.equal(created.status, 201, 'the base URL without /v2 works too');
  t.notOk('password' in created.body, 'password is not returned');
  t.equal(created.headers.get('location'), created.body.meta.location, 'Location is meta.location');
  t.equal(created.body.meta.location, `${c.base}/Users/${created.body.id}`);
  t.equal(created.headers.get('etag'), created.body.meta.version);
  const id = created.body.id;

  const only = (await c.get(`/Users/${id}?attributes=name.givenName,emails`)).body;
  t.same(Object.keys(only).sort(), ['emails', 'id', 'name', 'schemas']);
  t.same(only.name, { givenName: 'Amy' });
  const without = (await c.get(`/Users/${id}?excludedAttributes=emails,${ENT}`)).body;
  t.notOk('emails' in without);
  t.notOk(ENT in without);
  t.equal(without.userName, 'amy@x');
  const listed = (await c.get('/Users?attributes=userName')).body.Resources[0];
  t.same(Object.keys(listed).sort(), ['id', 'schemas', 'userName']);

  const g = (await c.post('/Groups', { schemas: [GROUP], displayName: 'Companions', members: [{ value: id, display: 'Amy' }] })).body;
  t.match(g.members, [{ value: id, $ref: `${c.base}/Users/${id}` }]);
  const noMembers = (await c.get('/Groups?excludedAttributes=members')).body.Resources[0];
  t.notOk('members' in noMembers, 'groups list without members');
  t.equal(noMembers.displayName, 'Companions');
  const withGroups = (await c.get(`/Users/${id}`)).body;
  t.match(withGroups.groups, [{ value: g.id, display: 'Companions', $ref: `${c.base}/Groups/${g.id}` }]);

  const db = new Database(`${h.dir}/tollgate.db`, { readonly: true });
  t.teardown(() => db.close());
  t.notOk(JSON.stringify(db.prepare('SELECT * FROM kv').all()).includes('Secr3t'), 'password is never stored');
  t.notOk(h.logs.text.includes('Secr3t'), 'nor logged');
});

t.test('discovery endpoints describe the service and are not rate limited', async (t) => {
  const h = await startScim({ rateLimit: 1 });
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  for (let i = 0; i < 3; i++) {
    const spc = await c.get('/ServiceProviderConfig');
    t.equal(spc.status, 200, `discovery call ${i + 1} is not limited`);
    t.match(spc.body, {
      patch: { supported: true },
      bulk: { supported: false },
      filter: { supported: true, maxResults: 200 },
      changePassword: { supported: false },
      sort: { supported: false },
      authenticationSchemes: [{ type: 'oauthbearertoken' }],
      meta: { location: `${c.base}/ServiceProviderConfig` },
    });
  }
  const types = (await c.get('/ResourceTypes')).body;
  t.match(types, { totalResults: 2, Resources: [{ id: 'User', endpoint: '/Users', schemaExtensions: [{ schema: ENT }] }, { id: 'Group' }] });
  t.match((await c.get('/ResourceTypes/Group')).body, { id: 'Group', schema: GROUP });
  const schemas = (await c.get('/Schemas')).body;
  t.same(schemas.Resources.map((s: { id: string }) => s.id), [CORE, ENT, GROUP]);
  const user = (await c.get(`/Schemas/${CORE}`)).body;
  t.match(user.attributes.find((a: { name: string }) => a.name === 'userName'), { required: true, uniqueness: 'server', caseExact: false });
  t.match(user.attributes.find((a: { name: string }) => a.name === 'manager'), { type: 'string', description: /1 to 128/ });
  isError(t, await c.get('/Schemas/urn:nope'), 404);
  t.equal((await c.get('/Users')).status, 200, 'the first counted request passes');
  const limited = await c.get('/Users');
  isError(t, limited, 429, undefined, 'the second is limited');
  t.match(limited.headers.get('retry-after'), /^[1-9]\d*$/);
});

t.test('every acknowledged write survives a restart; a failed request changes nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-scim-restart-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let h = await startScim({ dir });
  let c = await h.client('acme/okta');
  const a = (await c.post('/Users', newUser('a@x', { title: 'Dev' }))).body;
  const b = (await c.post('/Users', newUser('b@x'))).body;
  const g = (await c.post('/Groups', { displayName: 'Team', members: [{ value: a.id }] })).body;
  await c.patch(`/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: b.id }] }] });
  await c.patch(`/Users/${a.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
  await c.delete(`/Users/${b.id}`);

  const before = (await c.get(`/Users/${a.id}`)).body;
  const portless = (body: unknown, origin: string): unknown => JSON.parse(JSON.stringify(body).replaceAll(origin, 'ORIGIN'));
  const firstOrigin = h.origin;
  const failed = await c.patch(`/Users/${a.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: 'Lead' }, { op: 'add', path: 'nosuch', value: 1 }] });
  t.equal(failed.status, 400);
  const badPut = await c.put(`/Users/${a.id}`, newUser('a@x', { title: 'Lead', city: 'x'.repeat(40) }));
  t.equal(badPut.status, 400);
  const badGroup = await c.patch(`/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Renamed' }, { op: 'add', path: 'members', value: [{ value: b.id }] }] });
  isError(t, badGroup, 400, 'invalidValue', 'adding a deleted user');
  t.same((await c.get(`/Users/${a.id}`)).body, before, 'the failed requests changed nothing');
  t.equal((await c.get(`/Groups/${g.id}`)).body.displayName, 'Team');

  // A new server on the same path (as after a restart) sees everything that was acknowledged.
  await h.close();
  h = await startScim({ dir });
  t.teardown(() => h.close());
  c = await h.client('acme/okta');
  const after = (await c.get(`/Users/${a.id}`)).body;
  t.same(portless(after, h.origin), portless(before, firstOrigin), 'the user is unchanged after the restart');
  t.equal(after.active, false);
  t.match((await c.get(`/Groups/${g.id}`)).body, { displayName: 'Team', members: [{ value: a.id }] }, 'membership survived, without the deleted user');
  t.equal((await c.get(`/Users/${b.id}`)).status, 404, 'the delete survived');
  t.equal((await c.get('/Users')).body.totalResults, 1);
  t.equal((await c.post('/Users', newUser('A@X'))).status, 409, 'the uniqueness index survived');
});

t.test('userName eq is answered from the index, other filters scan', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-scim-index-'));
  const real = new EmbeddedStore({ path: dir });
  t.teardown(async () => {
    await real.close();
    await rm(dir, { recursive: true, force: true });
  });
  // A counting decorator around the real store: how many reads does one query cost?
  let reads = 0;
  const counted = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop !== 'close') reads++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Store;
  const h = await startScim({ store: counted });
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  for (let i = 0; i < 60; i++) await c.post('/Users', newUser(`bulk${i}@x`, { title: `t${i}` }));
  const group = (await c.post('/Groups', { schemas: [GROUP], displayName: 'Bulk' })).body;
  await c.patch(`/Groups/${group.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: (await c.get('/Users?filter=' + encodeURIComponent('userName eq "bulk42@x"'))).body.Resources[0].id }] }] });
  await c.get('/Users?count=1');
  reads = 0;
  const hit = await c.get('/Users?filter=' + encodeURIComponent('userName eq "BULK42@x"'));
  t.equal(hit.body.totalResults, 1);
  t.match(hit.body.Resources[0].groups, [{ value: group.id, display: 'Bulk' }], 'with the groups the user is in');
  // The name index, the record, its group ids, the group's record; the token was checked a moment ago.
  t.ok(reads <= 4, `an indexed lookup reads each thing once (${reads} store calls)`);
  reads = 0;
  const scan = await c.get('/Users?filter=' + encodeURIComponent('title eq "t42"'));
  t.equal(scan.body.totalResults, 1);
  t.ok(reads >= 60, `a non-indexed filter scans (${reads} store calls)`);
});

t.test('a store outage answers 503 with Retry-After, not 500', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const store = await openStore({ type: 'redis', url: redis.url, keyPrefix: 'scim-outage:', commandTimeoutMs: 300 });
  t.teardown(() => store.close());
  const h = await startScim({ store });
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  t.equal((await c.post('/Users', newUser('up@x'))).status, 201);
  redis.pause();
  const down = await c.get('/Users');
  redis.resume();
  isError(t, down, 503, undefined, 'store unavailable');
  t.equal(down.headers.get('retry-after'), '5');
  t.ok(h.logs.lines.some((l) => l['msg'] === 'scim: store unavailable'), 'the outage is logged');
  let back: Reply | undefined;
  for (let i = 0; i < 40 && back?.status !== 200; i++) {
    back = await c.get('/Users');
    if (back.status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(back?.status, 200, 'and it recovers');
});
