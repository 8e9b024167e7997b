/**
 * Okta's provisioning sequence, replayed as Okta sends it (Okta's SCIM 2.0 guide and the ZIA integration):
 * Test API Credentials, create with a pre-check, PUT updates, deactivate/reactivate by PATCH, Group Push,
 * and a 429 honoured by waiting for Retry-After.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { startScim } from '../helpers/scim.js';
import { backendStore, SCIM_BACKENDS } from '../helpers/scim-stores.js';

const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const q = (filter: string) => encodeURIComponent(filter);

for (const backend of SCIM_BACKENDS) {
  t.test(`Okta's full sequence (${backend})`, async (t) => {
    let limit = 0;
    const h = await startScim({ rateLimit: () => limit, ...(await backendStore(t, backend)) });
    t.teardown(() => h.close());
    // Okta sends application/json bodies to the SCIM Base URL the admin pasted.
    const okta = await h.client('acme/okta', { contentType: 'application/json; charset=utf-8' });

    // 1. Test API Credentials.
    const users0 = await okta.get('/Users?startIndex=1&count=2');
    t.equal(users0.status, 200);
    t.match(users0.body, { schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });
    const groups0 = await okta.get('/Groups?startIndex=1&count=100');
    t.equal(groups0.status, 200);
    t.equal(groups0.body.totalResults, 0);

    // 2. Create, with the pre-check GET for the userName.
    const userName = 'test.user@okta.local';
    const pre = await okta.get(`/Users?filter=${q(`userName eq "${userName}"`)}&startIndex=1&count=100`);
    t.match(pre.body, { totalResults: 0, Resources: [] }, 'the pre-check finds nobody');
    const created = await okta.post('/Users', {
      schemas: [CORE],
      userName,
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: userName, type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password: '1mz050nq',
      active: true,
    });
    t.equal(created.status, 201);
    const user = created.body;
    t.match(user, { userName, active: true, externalId: '00ujl29u0le5T6Aj10h7', meta: { resourceType: 'User', version: 'W/"1"' } });
    t.type(user.id, 'string');
    t.equal(created.headers.get('location'), `${okta.base}/Users/${user.id}`);
    t.notOk('password' in user);
    const found = await okta.get(`/Users?filter=${q(`userName eq "${userName}"`)}&startIndex=1&count=100`);
    t.match(found.body, { totalResults: 1, Resources: [{ id: user.id }] }, 'the next pre-check finds the user');
    t.equal((await okta.post('/Users', { schemas: [CORE], userName: 'Test.User@OKTA.local', active: true })).status, 409, 'a second create of the same user is 409');

    // 3. Update by PUT: Okta echoes the whole object, including id, meta and groups.
    const put = await okta.put(`/Users/${user.id}`, {
      ...user,
      id: 'ignored-by-server',
      name: { givenName: 'Tess', familyName: 'User' },
      title: 'Engineer',
      groups: [{ value: 'not-a-group', display: 'forged' }],
      meta: { ...user.meta, created: '1999-01-01T00:00:00Z' },
    });
    t.equal(put.status, 200);
    t.match(put.body, { id: user.id, name: { givenName: 'Tess' }, title: 'Engineer', meta: { created: user.meta.created, version: 'W/"2"' } });
    t.notOk('groups' in put.body, 'read-only groups from the body are ignored');
    t.equal(put.headers.get('etag'), 'W/"2"');

    // 4. Deactivate and reactivate by path-less PATCH; deactivation revokes the user's sessions.
    const off = await okta.patch(`/Users/${user.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
    t.equal(off.status, 200);
    t.equal(off.body.active, false);
    t.match(h.revoked, [{ tenant: 'acme/okta', userId: user.id, userName }], 'sessions are revoked');
    t.equal((await okta.get(`/Users/${user.id}`)).body.active, false, 'an inactive user is still returned');
    t.equal((await okta.get(`/Users?filter=${q(`userName eq "${userName}"`)}`)).body.totalResults, 1, 'and listed');
    const on = await okta.patch(`/Users/${user.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
    t.equal(on.body.active, true);
    t.equal(h.revoked.length, 1, 'reactivation revokes nothing');

    // 5. Group Push: create with no members, change membership in one PATCH, rename, delete.
    const second = (await okta.post('/Users', { schemas: [CORE], userName: 'second@okta.local', active: true })).body;
    const gpre = await okta.get(`/Groups?filter=${q('displayName eq "Test SCIMv2"')}&startIndex=1&count=100`);
    t.equal(gpre.body.totalResults, 0);
    const g = await okta.post('/Groups', { schemas: [GROUP], displayName: 'Test SCIMv2', members: [] });
    t.equal(g.status, 201);
    t.notOk('members' in g.body, 'created with no members');
    const gid = g.body.id;
    let m = await okta.patch(`/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: user.id, display: userName }] }] });
    t.equal(m.status, 200);
    t.match(m.body.members, [{ value: user.id }]);
    m = await okta.patch(`/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'remove', path: `members[value eq "${user.id}"]` },
        { op: 'add', path: 'members', value: [{ value: second.id, display: 'second@okta.local' }] },
      ],
    });
    t.equal(m.status, 200);
    t.same(m.body.members.map((x: { value: string }) => x.value), [second.id], 'one PATCH removes by filter and adds a list');
    t.same((await okta.get(`/Users/${user.id}`)).body.groups ?? [], [], "the removed user's groups are empty");
    t.match((await okta.get(`/Users/${second.id}`)).body.groups, [{ value: gid, display: 'Test SCIMv2' }]);
    t.match(h.changed.at(-1), { tenant: 'acme/okta', userIds: [second.id, user.id] }, 'the session layer hears about both');
    const retry = await okta.patch(`/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${user.id}"]` }] });
    t.equal(retry.status, 200, 'a retried removal succeeds');

    const renamed = await okta.patch(`/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: gid, displayName: 'Test SCIMv2 renamed' } }] });
    t.equal(renamed.status, 200);
    t.match(renamed.body, { id: gid, displayName: 'Test SCIMv2 renamed', members: [{ value: second.id }] });
    t.match((await okta.get(`/Users/${second.id}`)).body.groups, [{ display: 'Test SCIMv2 renamed' }], 'the rename shows in the user');
    t.match((await okta.get(`/Groups/${gid}`)).body, { displayName: 'Test SCIMv2 renamed' });

    t.equal((await okta.delete(`/Groups/${gid}`)).status, 204, 'unlink deletes the group');
    t.equal((await okta.get(`/Groups/${gid}`)).status, 404);
    t.same((await okta.get(`/Users/${second.id}`)).body.groups ?? [], [], 'and its memberships');

    // 6. Rate limit: Okta backs off for Retry-After and retries.
    limit = 2;
    const seen: number[] = [];
    let limited;
    for (let i = 0; i < 5 && limited === undefined; i++) {
      const r = await okta.get(`/Users/${user.id}`);
      seen.push(r.status);
      if (r.status === 429) limited = r;
    }
    t.ok(limited, `a 429 arrives once over the limit (${seen.join(', ')})`);
    t.equal(limited?.body.status, '429');
    const wait = Number(limited?.headers.get('retry-after'));
    t.ok(Number.isInteger(wait) && wait >= 1, 'with Retry-After in whole seconds');
    t.equal((await okta.get('/ServiceProviderConfig')).status, 200, 'discovery is not limited');
    await sleep(wait * 1000);
    const again = await okta.get(`/Users/${user.id}`);
    t.equal(again.status, 200, 'the retry after Retry-After succeeds');

    const ops = h.logs.lines.filter((l) => l['msg'] === 'scim').map((l) => `${l['op']} ${l['resource']} ${l['status']}`);
    for (const op of ['list Users 200', 'create Users 201', 'create Users 409', 'replace Users 200', 'patch Groups 200', 'delete Groups 204', 'get Users 429']) {
      t.ok(ops.includes(op), `logged: ${op}`);
    }
    t.notOk(h.logs.text.includes('1mz050nq'), 'the password is never logged');
    t.notOk(h.logs.text.includes(okta.token as string), 'nor the token');
  });
}
