/**
 * Entra ID's provisioning sequence, with the shapes Microsoft's provisioning service sends (Microsoft's
 * "Develop and plan provisioning for a SCIM endpoint" request samples): capitalised ops, "False" strings,
 * filtered and URN-qualified paths, Test Connection, and member removal by value list.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { startScim } from '../helpers/scim.js';
import { backendStore, SCIM_BACKENDS } from '../helpers/scim-stores.js';

const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const q = (filter: string) => encodeURIComponent(filter);
const ids = (members: { value: string }[] | undefined) => (members ?? []).map((m) => m.value).sort();

for (const backend of SCIM_BACKENDS) {
  t.test(`Entra's full sequence (${backend})`, async (t) => {
    let limit = 0;
    const h = await startScim({ rateLimit: () => limit, ...(await backendStore(t, backend)) });
    t.teardown(() => h.close());
    const entra = await h.client('acme/entra');

    // Test Connection: a random userName must give 200 with zero results, never 404.
    const probe = await entra.get(`/Users?filter=${q(`userName eq "${randomUUID()}"`)}`);
    t.equal(probe.status, 200);
    t.match(probe.body, { totalResults: 0, itemsPerPage: 0, startIndex: 1, Resources: [] });

    // Create a user, after a lookup by userName.
    const userName = `Test_User_${randomUUID()}@testuser.com`;
    t.equal((await entra.get(`/Users?filter=${q(`userName eq "${userName}"`)}`)).body.totalResults, 0);
    const created = await entra.post('/Users', {
      schemas: [CORE, ENT],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName,
      active: true,
      emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b@testuser.com' }],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
      [ENT]: { department: 'Research' },
    });
    t.equal(created.status, 201);
    const id = created.body.id;
    t.match(created.body, { schemas: [CORE, ENT], userName, [ENT]: { department: 'Research' } });
    const byExternal = await entra.get(`/Users?filter=${q('externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"')}`);
    t.match(byExternal.body, { totalResults: 1, Resources: [{ id }] }, 'externalId eq finds the user');

    // Update with Entra's PATCH shapes.
    const manager = (await entra.post('/Users', { schemas: [CORE], userName: 'boss@testuser.com', active: true })).body;
    const upd = await entra.patch(`/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
        { op: 'Add', path: 'name.givenName', value: 'Updated' },
        { op: 'Add', path: `${ENT}:department`, value: 'Engineering' },
        { op: 'Add', path: `${ENT}:manager`, value: manager.id },
        { op: 'Replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0100' },
        { op: 'Replace', path: 'title', value: 'Researcher' },
      ],
    });
    t.equal(upd.status, 200);
    t.match(upd.body, {
      emails: [{ type: 'work', value: 'updatedEmail@microsoft.com', primary: true }],
      name: { familyName: 'updatedFamilyName', givenName: 'Updated', formatted: 'givenName familyName' },
      [ENT]: { department: 'Engineering', manager: { value: manager.id } },
      phoneNumbers: [{ type: 'mobile', value: '+1 555 0100' }],
      title: 'Researcher',
    });
    t.equal(upd.body.emails.length, 1, 'the work email was replaced, not added');
    const byEmail = await entra.get(`/Users?filter=${q('emails[type eq "work"].value eq "UPDATEDEMAIL@microsoft.com"')}`);
    t.match(byEmail.body, { totalResults: 1, Resources: [{ id }] }, 'a value-path filter finds the user');
    const dept = await entra.get(`/Users?filter=${q(`${ENT}:department eq "engineering"`)}&attributes=userName`);
    t.match(dept.body, { totalResults: 1, Resources: [{ id, userName }] }, 'a URN-qualified filter finds the user');
    t.equal(h.changed.at(-1)?.userIds[0], id, 'a department change reaches the session layer');

    const renamed = await entra.patch(`/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'userName', value: `renamed_${userName}` }] });
    t.equal(renamed.body.userName, `renamed_${userName}`);
    t.equal((await entra.get(`/Users?filter=${q(`userName eq "${userName}"`)}`)).body.totalResults, 0, 'the old userName is free');
    t.equal((await entra.patch(`/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'userName', value: 'BOSS@testuser.com' }] })).status, 409, "another user's userName is 409");

    // Disable with the "False" string Entra sends, then enable with "True".
    const off = await entra.patch(`/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    t.equal(off.status, 200);
    t.equal(off.body.active, false, '"False" is false');
    t.match(h.revoked, [{ tenant: 'acme/entra', userId: id }], 'disabling revokes the sessions');
    const on = await entra.patch(`/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] });
    t.equal(on.body.active, true);

    // Groups.
    const other = (await entra.post('/Users', { schemas: [CORE], userName: 'other@testuser.com', active: true })).body;
    const g = await entra.post('/Groups', {
      schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group'],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'Entra Group',
      meta: { resourceType: 'Group' },
    });
    t.equal(g.status, 201);
    t.same(g.body.schemas, [GROUP], 'unknown schemas are dropped');
    const gid = g.body.id;
    const lookup = await entra.get(`/Groups?excludedAttributes=members&filter=${q('displayName eq "entra group"')}`);
    t.match(lookup.body, { totalResults: 1, Resources: [{ id: gid, displayName: 'Entra Group' }] });
    t.notOk('members' in lookup.body.Resources[0]);

    const add = await entra.patch(`/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: id }, { $ref: null, value: other.id }, { $ref: null, value: manager.id }] }],
    });
    t.equal(add.status, 200);
    t.same(ids(add.body.members), [id, other.id, manager.id].sort());
    const isMember = await entra.get(`/Groups?excludedAttributes=members&filter=${q(`id eq "${gid}" and members eq "${id}"`)}`);
    t.equal(isMember.body.totalResults, 1, 'the membership check finds the member');
    const notMember = await entra.get(`/Groups?filter=${q(`id eq "${gid}" and members[value eq "${randomUUID()}"]`)}`);
    t.equal(notMember.body.totalResults, 0, 'and not a stranger');

    // Remove with a value list: only the listed members go; the group is never emptied.
    const removed = await entra.patch(`/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: other.id }] }],
    });
    t.equal(removed.status, 200);
    t.same(ids(removed.body.members), [id, manager.id].sort(), 'only the listed member is removed');
    t.same(ids((await entra.get(`/Groups/${gid}`)).body.members), [id, manager.id].sort());
    t.same((await entra.get(`/Users/${other.id}`)).body.groups ?? [], []);
    t.match((await entra.get(`/Users/${id}`)).body.groups, [{ value: gid, display: 'Entra Group' }]);

    const rename = await entra.patch(`/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'displayName', value: 'Entra Group Renamed' }] });
    t.equal(rename.body.displayName, 'Entra Group Renamed');
    t.same(ids(rename.body.members), [id, manager.id].sort(), 'a rename keeps the members');

    // Delete the user: it leaves the group and its sessions are revoked.
    t.equal((await entra.delete(`/Users/${id}`)).status, 204);
    t.equal((await entra.get(`/Users/${id}`)).status, 404);
    t.same(ids((await entra.get(`/Groups/${gid}`)).body.members), [manager.id], 'the deleted user left the group');
    t.equal(h.revoked.at(-1)?.userId, id, 'delete revokes the sessions');
    t.equal((await entra.delete(`/Groups/${gid}`)).status, 204);

    // Entra honours 429 and Retry-After too.
    // Up to three tries: two requests that straddle a window boundary may both pass.
    limit = 1;
    let limited: Awaited<ReturnType<typeof entra.get>> | undefined;
    for (let i = 0; i < 3 && limited === undefined; i++) {
      const r = await entra.get('/Users?startIndex=1&count=1');
      if (r.status === 429) limited = r;
    }
    t.equal(limited?.status, 429, 'a 429 arrives once over the limit');
    await sleep(Number(limited?.headers.get('retry-after')) * 1000);
    t.equal((await entra.get('/Users?startIndex=1&count=1')).status, 200, 'after Retry-After the request succeeds');
  });
}
