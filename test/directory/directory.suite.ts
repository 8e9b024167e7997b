/**
 * directorySuite: the Directory's behaviour on one Store backend. directory.test.ts runs it on the
 * embedded store and a standalone Redis, directory-cluster.test.ts on a Redis Cluster (which also proves
 * every multi-key commit stays inside the tenant's hash tag).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Directory } from '../../src/directory/directory.js';
import type { DirectoryRecord } from '../../src/directory/records.js';
import { ScimError } from '../../src/scim/errors.js';
import { applyPatch, buildResource, type ScimResource } from '../../src/scim/patch.js';
import { GROUP_RESOURCE, USER_RESOURCE } from '../../src/scim/attributes.js';
import type { Store } from '../../src/sessions/store.js';

/** TapTest is the type of a subtest's `t`. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

type Hooks = { revoked: string[]; changed: string[][] };

/** user builds a User as buildResource does for a POST. */
export function user(userName: string, extra: ScimResource = {}): ScimResource {
  return buildResource(USER_RESOURCE, { userName, ...extra });
}

/** group builds a Group with members as buildResource does for a POST. */
export function group(displayName: string, members: string[] = []): ScimResource {
  return buildResource(GROUP_RESOURCE, { displayName, members: members.map((value) => ({ value })) });
}

const patchOf =
  (rt: typeof USER_RESOURCE, ops: unknown[]) =>
  (cur: ScimResource): ScimResource =>
    applyPatch(cur, ops, { resourceType: rt });

function scimStatus(err: unknown): string {
  return err instanceof ScimError ? `${err.status} ${err.scimType ?? ''}`.trim() : `not a ScimError: ${String(err)}`;
}

/** rejectsWith expects a ScimError with "<status> [scimType]". */
async function rejectsWith(tt: TapTest, p: Promise<unknown>, want: string, msg?: string): Promise<void> {
  try {
    await p;
    tt.fail(msg ?? `expected ${want}`);
  } catch (err) {
    tt.equal(scimStatus(err), want, msg ?? want);
  }
}

const memberIds = (r: ScimResource | undefined): string[] => ((r?.['members'] as { value: string }[] | undefined) ?? []).map((m) => m.value);
const groupNames = (r: ScimResource | undefined): string[] => ((r?.['groups'] as { display: string }[] | undefined) ?? []).map((g) => g.display);

/** directorySuite registers the tests; `open` gives a fresh store connection on the same backend. */
export function directorySuite(name: string, open: () => Promise<Store>): void {
  const setup = async (tt: TapTest, fail?: () => boolean): Promise<{ dir: Directory; tenant: string; hooks: Hooks }> => {
    const store = await open();
    tt.teardown(() => store.close());
    const hooks: Hooks = { revoked: [], changed: [] };
    const dir = new Directory({
      store,
      onUserRevoked: (_t, id) => {
        if (fail?.()) throw new Error('session store down');
        hooks.revoked.push(id);
      },
      onUsersChanged: (_t, ids) => void hooks.changed.push([...ids]),
    });
    return { dir, tenant: `org-${randomUUID().slice(0, 8)}/idp`, hooks };
  };

  t.test(`${name}: 50 concurrent creates of one userName, in different cases, give one user`, async (t) => {
    const { dir, tenant } = await setup(t);
    const names = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? 'Race@Example.com' : i % 3 === 1 ? 'race@example.com' : 'RACE@EXAMPLE.COM'));
    const results = await Promise.allSettled(names.map((n) => dir.createUser(tenant, user(n))));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(ok.length, 1, 'exactly one create succeeds');
    t.same(new Set(failed.map((r) => scimStatus(r.reason))), new Set(['409 uniqueness']), '49 get 409 uniqueness');
    t.equal(failed.length, 49);
    t.equal(await dir.count(tenant, 'User'), 1, 'one user is stored');
    t.ok(await dir.idByName(tenant, 'User', 'rAcE@eXaMpLe.CoM'), 'the index answers in any case');
  });

  t.test(`${name}: 50 concurrent group creates of one displayName give one group`, async (t) => {
    const { dir, tenant } = await setup(t);
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => dir.createGroup(tenant, group(i % 2 ? 'Sales' : 'SALES'))));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    t.equal(await dir.count(tenant, 'Group'), 1);
  });

  t.test(`${name}: concurrent renames to one name leave one owner, and the old names free`, async (t) => {
    const { dir, tenant } = await setup(t);
    const a = await dir.createUser(tenant, user('a@x'));
    const b = await dir.createUser(tenant, user('b@x'));
    const rename = (id: string) => dir.updateUser(tenant, id, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'userName', value: 'taken@x' }]));
    const results = await Promise.allSettled([rename(a.id), rename(b.id)]);
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const loser = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(scimStatus(loser?.reason), '409 uniqueness');
    const winner = await dir.idByName(tenant, 'User', 'TAKEN@x');
    const other = winner === a.id ? 'b@x' : 'a@x';
    t.ok(winner === a.id || winner === b.id);
    t.notOk(await dir.idByName(tenant, 'User', winner === a.id ? 'a@x' : 'b@x'), "the winner's old name is free");
    t.ok(await dir.idByName(tenant, 'User', other), "the loser's name is still its own");
    const again = await dir.createUser(tenant, user(winner === a.id ? 'A@X' : 'B@X'));
    t.ok(again.id, 'a freed name can be taken again');
  });

  t.test(`${name}: getByName answers as get does, ignoring case, and follows renames and deletes`, async (t) => {
    const { dir, tenant } = await setup(t);
    const alice = await dir.createUser(tenant, user('Alice@X', { displayName: 'Alice' }));
    const sales = await dir.createGroup(tenant, group('Sales', [alice.id]));
    const byName = await dir.getByName(tenant, 'User', 'aLiCe@x');
    t.same(byName, await dir.get(tenant, 'User', alice.id), 'the same record, groups included, as by id');
    t.same(groupNames(byName?.resource), ['Sales']);
    const bare = await dir.getByName(tenant, 'User', 'ALICE@X', { expand: false });
    t.same(bare, await dir.get(tenant, 'User', alice.id, { expand: false }), 'expand false: no groups read');
    t.same(await dir.getByName(tenant, 'Group', 'SALES'), await dir.getGroup(tenant, sales.id), 'a group by displayName, with members');
    t.same(memberIds((await dir.getByName(tenant, 'Group', 'sales'))?.resource), [alice.id]);
    t.equal(await dir.getByName(tenant, 'User', 'nobody@x'), null, 'an unknown name is null');
    await dir.updateUser(tenant, alice.id, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'userName', value: 'alice2@x' }]));
    t.equal(await dir.getByName(tenant, 'User', 'alice@x'), null, 'the old name no longer finds her');
    t.equal((await dir.getByName(tenant, 'User', 'Alice2@X'))?.id, alice.id, 'the new one does');
    await dir.deleteUser(tenant, alice.id);
    t.equal(await dir.getByName(tenant, 'User', 'alice2@x'), null, 'a deleted user is not found');
    t.equal(await dir.findUserByUserName(tenant, 'alice2@x'), null);
  });

  t.test(`${name}: concurrent patches of one group lose no update`, async (t) => {
    const { dir, tenant } = await setup(t);
    const users = await Promise.all(Array.from({ length: 20 }, (_, i) => dir.createUser(tenant, user(`m${i}@x`))));
    const g = await dir.createGroup(tenant, group('Crowd'));
    await Promise.all(
      users.map((u) => dir.updateGroup(tenant, g.id, patchOf(GROUP_RESOURCE, [{ op: 'add', path: 'members', value: [{ value: u.id }] }]))),
    );
    const after = await dir.getGroup(tenant, g.id);
    t.same(memberIds(after?.resource).sort(), users.map((u) => u.id).sort(), 'all 20 members are there');
    t.equal(after?.etag, 'W/"21"', 'one version per write');
    for (const u of users) t.same(groupNames((await dir.getUser(tenant, u.id))?.resource), ['Crowd']);
  });

  t.test(`${name}: membership stays two-sided through group and user changes`, async (t) => {
    const { dir, tenant, hooks } = await setup(t);
    const [u1, u2, u3] = await Promise.all(['u1@x', 'u2@x', 'u3@x'].map((n) => dir.createUser(tenant, user(n))));
    if (!u1 || !u2 || !u3) throw new Error('setup');
    const g = await dir.createGroup(tenant, group('Eng', [u1.id, u2.id]));
    t.same(memberIds(g.resource), [u1.id, u2.id].sort());
    t.same(groupNames((await dir.getUser(tenant, u1.id))?.resource), ['Eng'], "the user's groups show the group");

    await rejectsWith(
      t,
      dir.updateGroup(tenant, g.id, patchOf(GROUP_RESOURCE, [{ op: 'add', path: 'members', value: [{ value: u3.id }, { value: 'nobody' }] }])),
      '400 invalidValue',
      'an unknown member id is 400 invalidValue',
    );
    t.same(memberIds((await dir.getGroup(tenant, g.id))?.resource), [u1.id, u2.id].sort(), 'and nothing was added');
    t.same(groupNames((await dir.getUser(tenant, u3.id))?.resource), [], 'not even the valid member');

    await dir.updateGroup(tenant, g.id, patchOf(GROUP_RESOURCE, [{ op: 'replace', value: { displayName: 'Engineering' } }]));
    t.same(groupNames((await dir.getUser(tenant, u2.id))?.resource), ['Engineering'], 'a rename shows in the users');
    t.same(hooks.changed.at(-1)?.sort(), [u1.id, u2.id].sort(), 'and tells the session layer about every member');

    await dir.deleteUser(tenant, u1.id);
    t.same(memberIds((await dir.getGroup(tenant, g.id))?.resource), [u2.id], 'deleting a user removes them from groups');
    t.equal((await dir.getGroup(tenant, g.id))?.etag, 'W/"3"', "which is a new version of the group");

    await dir.deleteGroup(tenant, g.id);
    t.same(groupNames((await dir.getUser(tenant, u2.id))?.resource), [], 'deleting a group removes it from users');
    t.equal(await dir.idByName(tenant, 'Group', 'engineering'), null, 'and frees its name');
  });

  t.test(`${name}: a user deleted while being added to a group never stays a member`, async (t) => {
    const { dir, tenant } = await setup(t);
    for (let i = 0; i < 15; i++) {
      const u = await dir.createUser(tenant, user(`victim${i}@x`));
      const g = await dir.createGroup(tenant, group(`G${i}`));
      const add = dir.updateGroup(tenant, g.id, patchOf(GROUP_RESOURCE, [{ op: 'add', path: 'members', value: [{ value: u.id }] }]));
      const del = dir.deleteUser(tenant, u.id);
      const [a, d] = await Promise.allSettled([add, del]);
      t.equal(d.status, 'fulfilled', `round ${i}: the delete succeeds`);
      if (a.status === 'rejected') t.equal(scimStatus(a.reason), '400 invalidValue', `round ${i}: a late add is 400`);
      t.same(memberIds((await dir.getGroup(tenant, g.id))?.resource), [], `round ${i}: no dangling member`);
    }
  });

  t.test(`${name}: the revoke hook runs on deactivation and delete, after the commit`, async (t) => {
    let failHook = false;
    const { dir, tenant, hooks } = await setup(t, () => failHook);
    const u = await dir.createUser(tenant, user('leaver@x'));
    await dir.updateUser(tenant, u.id, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'title', value: 'Dev' }]));
    t.same(hooks.revoked, [], 'an ordinary update revokes nothing');
    await dir.updateUser(tenant, u.id, patchOf(USER_RESOURCE, [{ op: 'replace', value: { active: 'False' } }]));
    t.same(hooks.revoked, [u.id], 'deactivation revokes');
    const back = await dir.updateUser(tenant, u.id, patchOf(USER_RESOURCE, [{ op: 'replace', value: { active: true } }]));
    t.equal(back.resource['active'], true);
    t.same(hooks.revoked, [u.id], 'reactivation does not');

    failHook = true;
    await t.rejects(dir.updateUser(tenant, u.id, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'active', value: false }])));
    t.equal((await dir.getUser(tenant, u.id))?.resource['active'], false, 'a failing hook fails the call after the commit');
    failHook = false;
    await dir.updateUser(tenant, u.id, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'active', value: false }]));
    t.same(hooks.revoked, [u.id, u.id], "so the IdP's retry revokes again");

    await dir.deleteUser(tenant, u.id);
    t.same(hooks.revoked, [u.id, u.id, u.id], 'delete revokes');
    t.equal(await dir.getUser(tenant, u.id), null);
    t.equal(await dir.idByName(tenant, 'User', 'leaver@x'), null);
  });

  t.test(`${name}: a failed write changes nothing; If-Match guards versions`, async (t) => {
    const { dir, tenant } = await setup(t);
    const u = await dir.createUser(tenant, user('keep@x', { title: 'Dev' }));
    await rejectsWith(
      t,
      dir.updateUser(tenant, u.id, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'title', value: 'Lead' }, { op: 'replace', path: 'city', value: 'x'.repeat(33) }])),
      '400 invalidValue',
    );
    const same = await dir.getUser(tenant, u.id);
    t.equal(same?.resource['title'], 'Dev');
    t.equal(same?.etag, u.etag, 'the version did not move');
    await rejectsWith(t, dir.updateUser(tenant, u.id, (c) => c, { ifMatch: 'W/"7"' }), '412');
    await rejectsWith(t, dir.deleteUser(tenant, u.id, { ifMatch: '"7"' }), '412');
    const ok = await dir.updateUser(tenant, u.id, (c) => ({ ...c, title: 'Lead' }), { ifMatch: u.etag });
    t.equal(ok.etag, 'W/"2"');
    t.equal(await dir.getUser(tenant, 'x'), null, 'an unknown id reads as null');
    await rejectsWith(t, dir.updateUser(tenant, 'missing', (c) => c), '404');
  });

  t.test(`${name}: pages are stable and the admin view shows source, state, department and groups`, async (t) => {
    const { dir, tenant } = await setup(t);
    const created: DirectoryRecord[] = [];
    for (let i = 0; i < 7; i++) {
      created.push(await dir.createUser(tenant, user(`p${i}@x`, { [ENT]: { department: i % 2 ? 'Sales' : 'Eng' } }), { source: i === 6 ? 'jit' : 'scim' }));
    }
    const all = await dir.pageIds(tenant, 'User', 0, 100);
    t.same(all, created.map((c) => c.id).sort(), 'ids list in byte order, which is creation order to the millisecond (UUIDv7)');
    const pages = [await dir.pageIds(tenant, 'User', 0, 3), await dir.pageIds(tenant, 'User', 3, 3), await dir.pageIds(tenant, 'User', 6, 3)];
    t.same(pages.flat(), all, 'pages join up with no gap or repeat');
    t.same(await dir.pageIds(tenant, 'User', 7, 3), [], 'past the end is empty');

    const g = await dir.createGroup(tenant, group('Admins', [all[0] as string]));
    const dept = (id: string | undefined) => (created.findIndex((c) => c.id === id) % 2 ? 'Sales' : 'Eng');
    await dir.updateUser(tenant, all[1] as string, patchOf(USER_RESOURCE, [{ op: 'replace', path: 'active', value: false }]));
    const { total, users } = await dir.listUsers(tenant, { offset: 0, limit: 3 });
    t.equal(total, 7);
    t.match(users[0], { id: all[0], active: true, department: dept(all[0]), groups: ['Admins'] });
    t.match(users[1], { id: all[1], active: false, department: dept(all[1]), groups: [] });
    const everyone = (await dir.listUsers(tenant)).users;
    t.same(everyone.map((u) => u.source).sort(), ['jit', 'scim', 'scim', 'scim', 'scim', 'scim', 'scim'], 'users show their source');
    t.equal(everyone.find((u) => u.id === created[6]?.id)?.source, 'jit');
    t.match((await dir.listGroups(tenant)).groups, [{ id: g.id, displayName: 'Admins', members: 1, source: 'scim' }]);
    // Users made in one millisecond sort by their ids' random bits, so all[0] is not always p0: look it up by its own name.
    const firstName = `p${created.findIndex((c) => c.id === all[0])}@x`;
    t.match(await dir.lookupLogin(tenant, firstName.toUpperCase()), { id: all[0], active: true, groups: ['Admins'] }, 'login lookup ignores case');
    t.equal(await dir.lookupLogin(tenant, 'nobody@x'), null);
    const scanned = [];
    for await (const r of dir.scan(tenant, 'User', { batch: 2, expand: false })) scanned.push(r.id);
    t.same(scanned, all, 'scan walks every user in order, in batches');
  });

  t.test(`${name}: tenants are separate`, async (t) => {
    const { dir, tenant } = await setup(t);
    const other = `${tenant}-2`;
    const u = await dir.createUser(tenant, user('same@x'));
    const v = await dir.createUser(other, user('same@x'));
    t.not(u.id, v.id, 'one userName may exist in two tenants');
    t.equal(await dir.getUser(other, u.id), null, "a tenant cannot read another's user");
    t.equal(await dir.count(other, 'User'), 1);
    t.throws(() => dir.count('no-slash', 'User'), /orgId/);
    t.throws(() => dir.count('a{b}/c', 'User'), /orgId/, 'a brace could move the hash tag, so it is refused');
  });
}
