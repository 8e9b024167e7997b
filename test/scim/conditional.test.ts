/**
 * Conditional requests on SCIM resources (RFC 7644 §3.14, RFC 9110 §13): If-None-Match on a GET answers
 * 304 with the ETag and no body; If-Match and If-None-Match guard writes with 412.
 */
import t from 'tap';
import { isError, startScim } from '../helpers/scim.js';

const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const h = await startScim();
t.teardown(() => h.close());
const c = await h.client('acme/okta');

t.test('the server advertises ETags', async (t) => {
  const spc = await c.get('/ServiceProviderConfig');
  t.same(spc.body.etag, { supported: true });
});

t.test('If-None-Match on a GET of a User or Group: 304 when it names the current ETag', async (t) => {
  const user = await c.post('/Users', { schemas: [CORE], userName: 'cond@example.com', active: true });
  const group = await c.post('/Groups', { schemas: [GROUP], displayName: 'Cond' });
  for (const [name, path, created] of [['User', `/Users/${user.body.id}`, user], ['Group', `/Groups/${group.body.id}`, group]] as const) {
    const got = await c.get(path);
    const etag = got.headers.get('etag') as string;
    t.equal(etag, created.headers.get('etag'), `${name}: GET has the ETag the create returned`);
    t.equal(etag, got.body.meta.version, `${name}: the ETag is meta.version`);
    const bare = etag.replace(/^W\//, '');
    const cases: [string, string, number][] = [
      ['the current tag', etag, 304],
      ['its strong spelling (weak comparison)', bare, 304],
      ['a list that holds it', `"other", ${etag}`, 304],
      ['*', '*', 304],
      ['another version', 'W/"999"', 200],
      ['a list without it', '"a", W/"b"', 200],
      ['a field that is not a tag list', 'not-a-tag', 200],
    ];
    for (const [what, field, status] of cases) {
      const r = await c.get(path, { 'if-none-match': field });
      t.equal(r.status, status, `${name}, ${what}: ${status}`);
      if (status === 304) {
        t.equal(r.text, '', `${name}, ${what}: no body`);
        t.equal(r.headers.get('etag'), etag, `${name}, ${what}: the ETag`);
        t.equal(r.headers.get('content-type'), null, `${name}, ${what}: no content type`);
      } else {
        t.equal(r.body.id, created.body.id, `${name}, ${what}: the resource`);
      }
    }
  }
  isError(t, await c.get('/Users/00000000-0000-7000-8000-000000000000', { 'if-none-match': '*' }), 404, undefined, 'an unknown id is 404, not 304');
});

t.test('a change gives a new ETag, so the old one no longer answers 304', async (t) => {
  const u = (await c.post('/Users', { schemas: [CORE], userName: 'change@example.com', active: true })).body;
  const before = (await c.get(`/Users/${u.id}`)).headers.get('etag') as string;
  const patched = await c.patch(`/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: 'Lead' }] });
  const after = patched.headers.get('etag') as string;
  t.not(after, before);
  const r = await c.get(`/Users/${u.id}`, { 'if-none-match': before });
  t.equal(r.status, 200);
  t.equal(r.body.title, 'Lead');
  t.equal((await c.get(`/Users/${u.id}`, { 'if-none-match': after })).status, 304);
});

t.test("a user's ETag follows its groups, which the Group side changes", async (t) => {
  const u = (await c.post('/Users', { schemas: [CORE], userName: 'member@example.com', active: true })).body;
  const g = (await c.post('/Groups', { schemas: [GROUP], displayName: 'Night Shift' })).body;
  const alone = (await c.get(`/Users/${u.id}`)).headers.get('etag') as string;

  t.equal((await c.patch(`/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: u.id }] }] })).status, 200);
  const joined = await c.get(`/Users/${u.id}`, { 'if-none-match': alone });
  t.equal(joined.status, 200, 'joining a group is a new representation of the user');
  t.same(joined.body.groups.map((x: { value: string }) => x.value), [g.id]);
  const inGroup = joined.headers.get('etag') as string;
  t.not(inGroup, alone);
  t.equal(joined.body.meta.version, inGroup);

  t.equal((await c.patch(`/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Day Shift' }] })).status, 200);
  const renamed = await c.get(`/Users/${u.id}`, { 'if-none-match': inGroup });
  t.equal(renamed.status, 200, "the group's new name is a new representation too");
  t.equal(renamed.body.groups[0].display, 'Day Shift');

  t.equal((await c.patch(`/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${u.id}"]` }] })).status, 200);
  t.equal((await c.get(`/Users/${u.id}`, { 'if-none-match': alone })).status, 304, 'back to no groups: the first representation again');

  const excluded = await c.get(`/Users/${u.id}?excludedAttributes=groups`);
  t.equal(excluded.status, 200);
  t.match(excluded.headers.get('etag'), /^W\/"\d+"$/);
});

t.test('If-Match and If-None-Match on GET, PUT, PATCH and DELETE', async (t) => {
  const u = (await c.post('/Users', { schemas: [CORE], userName: 'guard@example.com', active: true })).body;
  const g = (await c.post('/Groups', { schemas: [GROUP], displayName: 'Guards', members: [{ value: u.id }] })).body;
  const path = `/Users/${u.id}`;
  const current = (await c.get(path)).headers.get('etag') as string;
  t.match(current, /^W\/"1-[0-9a-f]+"$/, 'a user in a group has a tag with a digest of its groups');
  const body = { schemas: [CORE], userName: 'guard@example.com', active: true, title: 'Guard' };

  isError(t, await c.get(path, { 'if-match': 'W/"999"' }), 412, undefined, 'GET with If-Match of another version');
  t.equal((await c.get(path, { 'if-match': current })).status, 200, 'GET with If-Match of this version');
  isError(t, await c.put(path, body, { 'if-none-match': current }), 412, undefined, 'PUT with If-None-Match of this version');
  isError(t, await c.patch(path, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: 'x' }] }, { 'if-none-match': '*' }), 412, undefined, 'PATCH with If-None-Match: *');
  isError(t, await c.delete(path, { 'if-none-match': current }), 412, undefined, 'DELETE with If-None-Match of this version');
  isError(t, await c.put(path, body, { 'if-match': 'W/"7", "x"' }), 412, undefined, 'PUT with If-Match of other versions');
  const stillOne = await c.get(path);
  t.equal(stillOne.body.meta.version, current, 'none of the refused writes changed the user');

  // If-Match compares the version: the groups in the tag are read-only on the user.
  const oldTag = current;
  t.equal((await c.patch(`/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'members' }] })).status, 200);
  const put = await c.put(path, body, { 'if-match': oldTag });
  t.equal(put.status, 200, 'a tag from before a membership change still names the version a write is based on');
  t.equal(put.body.meta.version, 'W/"2"');
  isError(t, await c.put(path, body, { 'if-match': oldTag }), 412, undefined, 'the version the tag names is gone now');
  t.equal((await c.put(path, body, { 'if-none-match': oldTag })).status, 200, 'If-None-Match of an older version lets the write through');
  t.equal((await c.delete(path, { 'if-match': 'W/"3"' })).status, 204, 'DELETE with If-Match of this version');
});
