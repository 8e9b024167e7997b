/**
 * Directory: the users and groups that SCIM (and later SAML JIT) provision, per tenant, in the Store.
 *
 *   SCIM server / JIT -> Directory -> Store.atomic (embedded SQLite | Redis, one hash tag per tenant)
 *                          └─ after commit: onUserRevoked (sessions), onUsersChanged (session refresh)
 *
 * Every write is one `Store.atomic` call, so a failed request changes nothing and an acknowledged one is
 * complete on every node. Invariants it keeps:
 * - userName (users) and displayName (groups) are unique ignoring case, even under concurrent creates
 *   and renames: the index key is written with `ifAbsent`, so of 50 racing creates one commits.
 * - A write is based on the version it read: it also creates a short-lived claim key for the next
 *   version with `ifAbsent`, so of two writers that read the same version only one commits and the
 *   other re-reads and re-applies its change (optimistic concurrency, no lost updates).
 * - Membership is two-sided: `gmem:<group>` and `ugroups:<user>` always agree, and every member
 *   exists. Adding a user to a group claims the user's add-version, which deleting the user claims
 *   too, so a user cannot be added to a group while being deleted.
 */
import { getKey } from '../scim/attributes.js';
import { ScimError, badRequest } from '../scim/errors.js';
import type { ScimResource } from '../scim/patch.js';
import { readAll, readThrough, type Store } from '../sessions/store.js';
import { commit, Tx } from './commit.js';
import { DirectoryKeys, fold, newId, type Kind } from './keys.js';
import {
  departmentOf,
  externalIdOf,
  isActive,
  memberIdsOf,
  namesVersion,
  render,
  renderParsed,
  requiredName,
  sanitize,
  summarizeGroup,
  summarizeUser,
  type DirectoryRecord,
  type GroupRef,
  type GroupSummary,
  type Source,
  type StoredRecord,
  type UserSummary,
} from './records.js';

export type { DirectoryRecord, GroupSummary, Source, UserSummary } from './records.js';

/** DirectoryOptions are the store and the hooks the session layer plugs in. */
export interface DirectoryOptions {
  readonly store: Store;
  /**
   * onUserRevoked is called after every committed write that leaves a user inactive, and after a user is
   * deleted, so their sessions can be revoked on every node. It must be idempotent: calling it on each such
   * write (not only on the transition) means an IdP that retries after a failed hook revokes again.
   * A rejection fails the request after the write is committed.
   */
  readonly onUserRevoked?: ((tenant: string, userId: string, userName: string) => void | Promise<void>) | undefined;
  /** onUsersChanged hears users whose userName, displayName, department or groups changed (sessions show them). */
  readonly onUsersChanged?: ((tenant: string, userIds: readonly string[]) => void | Promise<void>) | undefined;
  /** now is the clock for meta.created/lastModified and new ids. */
  readonly now?: () => number;
}

/** ReadOptions: `expand` renders a user's `groups` or a group's `members` (default true). */
export interface ReadOptions {
  readonly expand?: boolean;
}

/**
 * WriteOptions are the client's conditions (RFC 7644 §3.14, RFC 9110 §13.1): If-Match that does not
 * name the current version, or If-None-Match that does, is 412.
 */
export interface WriteOptions {
  readonly ifMatch?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
}

/** Mutation turns the current resource into the next one; it may run more than once, so it must be pure. */
export type Mutation = (current: ScimResource) => ScimResource;

/** Page is an offset/limit window over an ordered id set. */
export interface Page {
  readonly offset?: number;
  readonly limit?: number;
}

/** Directory is the per-tenant user and group store; see the module comment for its invariants. */
export class Directory {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly onUserRevoked: DirectoryOptions['onUserRevoked'];
  private readonly onUsersChanged: DirectoryOptions['onUsersChanged'];

  constructor(opts: DirectoryOptions) {
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.onUserRevoked = opts.onUserRevoked;
    this.onUsersChanged = opts.onUsersChanged;
  }

  // ---- reads ----

  /** get reads one user or group, or null. */
  async get(tenant: string, kind: Kind, id: string, opts: ReadOptions = {}): Promise<DirectoryRecord | null> {
    const k = new DirectoryKeys(tenant);
    if (opts.expand === false) {
      const rec = await this.read(k, kind, id);
      return rec === null ? null : renderParsed(kind, id, rec);
    }
    // The record and its membership set in one round trip; then a user's groups' names in one more.
    const [raw, related] = await readAll(this.store, [
      { op: 'get', key: k.record(kind, id) },
      { op: 'smembers', key: this.relatedKey(k, kind, id) },
    ]);
    return this.render(k, kind, id, raw, related);
  }

  /**
   * getByName reads a user by userName or a group by displayName, ignoring case: the unique index,
   * the record and its membership set from one snapshot, in one round trip where the store can
   * (Store.readVia); then a user's groups' names in one more when it has any.
   */
  async getByName(tenant: string, kind: Kind, name: string, opts: ReadOptions = {}): Promise<DirectoryRecord | null> {
    const k = new DirectoryKeys(tenant);
    // Each prefix ends where the id goes, so the store appends the id the index holds.
    const via = k.name(kind, name);
    if (opts.expand === false) {
      const got = await readThrough(this.store, via, [{ op: 'get', key: k.record(kind, '') }]);
      return got === null || got.results[0] === null ? null : renderParsed(kind, got.value, JSON.parse(got.results[0]) as StoredRecord);
    }
    const got = await readThrough(this.store, via, [
      { op: 'get', key: k.record(kind, '') },
      { op: 'smembers', key: this.relatedKey(k, kind, '') },
    ]);
    return got === null ? null : this.render(k, kind, got.value, got.results[0], got.results[1]);
  }

  /** relatedKey is a user's set of groups or a group's set of members. */
  private relatedKey(k: DirectoryKeys, kind: Kind, id: string): string {
    return kind === 'User' ? k.groupsOf(id) : k.members(id);
  }

  /** render turns a stored record and its membership set into what readers get; null when the record is gone. */
  private async render(k: DirectoryKeys, kind: Kind, id: string, raw: string | null, related: string[]): Promise<DirectoryRecord | null> {
    if (raw === null) return null;
    const rec = JSON.parse(raw) as StoredRecord;
    return renderParsed(kind, id, rec, kind === 'User' ? await this.groupNames(k, related) : related);
  }

  /** load reads several ids in parallel, skipping ids that no longer exist. */
  async load(tenant: string, kind: Kind, ids: readonly string[], opts: ReadOptions = {}): Promise<DirectoryRecord[]> {
    const recs = await Promise.all(ids.map((id) => this.get(tenant, kind, id, opts)));
    return recs.filter((r): r is DirectoryRecord => r !== null);
  }

  /** count is the number of users or groups of a tenant. */
  count(tenant: string, kind: Kind): Promise<number> {
    return this.store.scard(new DirectoryKeys(tenant).ids(kind));
  }

  /** pageIds lists ids in their stable (byte) order, one window at a time, without loading the rest. */
  pageIds(tenant: string, kind: Kind, offset: number, limit: number): Promise<string[]> {
    return this.store.smembers(new DirectoryKeys(tenant).ids(kind), { offset, limit });
  }

  /** idByName answers `userName eq` / `displayName eq` from the unique index, ignoring case. */
  idByName(tenant: string, kind: Kind, name: string): Promise<string | null> {
    return this.store.get(new DirectoryKeys(tenant).name(kind, name));
  }

  /** idsByExternalId answers `externalId eq` from its index (exact match, RFC 7643 §3.1). */
  idsByExternalId(tenant: string, kind: Kind, externalId: string): Promise<string[]> {
    return this.store.smembers(new DirectoryKeys(tenant).externalId(kind, externalId));
  }

  /** scan walks every user or group in id order, `batch` records at a time. */
  async *scan(tenant: string, kind: Kind, opts: ReadOptions & { batch?: number } = {}): AsyncGenerator<DirectoryRecord> {
    const batch = opts.batch ?? 500;
    for (let offset = 0; ; offset += batch) {
      const ids = await this.pageIds(tenant, kind, offset, batch);
      if (ids.length === 0) return;
      yield* await this.load(tenant, kind, ids, opts);
      if (ids.length < batch) return;
    }
  }

  /** getUser reads one user, with `groups` unless expand is false. */
  getUser(tenant: string, id: string, opts?: ReadOptions): Promise<DirectoryRecord | null> {
    return this.get(tenant, 'User', id, opts);
  }

  /** getGroup reads one group, with `members` unless expand is false. */
  getGroup(tenant: string, id: string, opts?: ReadOptions): Promise<DirectoryRecord | null> {
    return this.get(tenant, 'Group', id, opts);
  }

  /** findUserByUserName finds a user by login name, ignoring case. */
  findUserByUserName(tenant: string, userName: string, opts?: ReadOptions): Promise<DirectoryRecord | null> {
    return this.getByName(tenant, 'User', userName, opts);
  }

  // ---- the admin's view ----

  /** listUsers is User Management: source, active state, department and groups of each user. */
  async listUsers(tenant: string, page: Page = {}): Promise<{ total: number; users: UserSummary[] }> {
    const k = new DirectoryKeys(tenant);
    const [total, ids] = await Promise.all([this.count(tenant, 'User'), this.pageIds(tenant, 'User', page.offset ?? 0, page.limit ?? 100)]);
    const rows = await Promise.all(ids.map((id) => this.userSummary(k, id)));
    return { total, users: rows.filter((r): r is UserSummary => r !== null) };
  }

  /** listGroups is the group list: source and member count of each group. */
  async listGroups(tenant: string, page: Page = {}): Promise<{ total: number; groups: GroupSummary[] }> {
    const k = new DirectoryKeys(tenant);
    const [total, ids] = await Promise.all([this.count(tenant, 'Group'), this.pageIds(tenant, 'Group', page.offset ?? 0, page.limit ?? 100)]);
    const rows = await Promise.all(
      ids.map(async (id) => {
        const [rec, n] = await Promise.all([this.read(k, 'Group', id), this.store.scard(k.members(id))]);
        return rec === null ? null : summarizeGroup(id, rec, n);
      }),
    );
    return { total, groups: rows.filter((r): r is GroupSummary => r !== null) };
  }

  /** lookupLogin is what a login needs: the user by login name (ignoring case), active state and groups. */
  async lookupLogin(tenant: string, userName: string): Promise<UserSummary | null> {
    const k = new DirectoryKeys(tenant);
    const id = await this.store.get(k.name('User', userName));
    return id === null ? null : this.userSummary(k, id);
  }

  /** summaryOf is the same view of one user by id (what live sessions show). */
  summaryOf(tenant: string, id: string): Promise<UserSummary | null> {
    return this.userSummary(new DirectoryKeys(tenant), id);
  }

  // ---- user writes ----

  /** createUser stores a new user (userName unique ignoring case, else 409 uniqueness); `active` defaults to true. */
  async createUser(tenant: string, input: ScimResource, opts: { source?: Source } = {}): Promise<DirectoryRecord> {
    const k = new DirectoryKeys(tenant);
    const resource = sanitize('User', input);
    const userName = requiredName('User', resource);
    if (!Object.keys(resource).some((key) => key.toLowerCase() === 'active')) resource['active'] = true;
    const at = this.iso();
    const id = newId(this.now());
    const rec: StoredRecord = { source: opts.source ?? 'scim', created: at, lastModified: at, version: 1, resource };
    return commit(this.store, async () => {
      await this.assertNameFree(k, 'User', userName, id);
      const tx = new Tx();
      tx.absent(k.name('User', userName));
      tx.absent(k.record('User', id));
      tx.put(k.record('User', id), rec);
      tx.put(k.name('User', userName), id);
      tx.sadd(k.ids('User'), id);
      const ext = externalIdOf(resource);
      if (ext !== undefined) tx.sadd(k.externalId('User', ext), id);
      return { tx, result: render('User', id, rec, []) };
    });
  }

  /**
   * updateUser applies a replace (PUT) or a patch: `mutate` gets the current resource, with `groups`,
   * and returns the next one. id, meta, groups and password in its result are ignored.
   */
  async updateUser(tenant: string, id: string, mutate: Mutation, opts: WriteOptions = {}): Promise<DirectoryRecord> {
    const k = new DirectoryKeys(tenant);
    return commit(this.store, async () => {
      const cur = await this.mustRead(k, 'User', id, opts);
      const groups = await this.groupRefs(k, id);
      const next = sanitize('User', mutate(render('User', id, cur, groups).resource));
      const userName = requiredName('User', next);
      const oldName = requiredName('User', cur.resource);
      const rec: StoredRecord = { ...cur, lastModified: this.iso(), version: cur.version + 1, resource: next };
      const tx = new Tx();
      tx.claim(k.claim(`user:${id}`, rec.version));
      tx.put(k.record('User', id), rec);
      if (fold(userName) !== fold(oldName)) {
        await this.assertNameFree(k, 'User', userName, id);
        tx.absent(k.name('User', userName));
        tx.put(k.name('User', userName), id);
        tx.del(k.name('User', oldName));
      }
      this.reindexExternalId(tx, k, 'User', id, cur.resource, next);
      const changed =
        ['userName', 'displayName'].some((a) => getKey(cur.resource, a) !== getKey(next, a)) ||
        departmentOf(cur.resource) !== departmentOf(next);
      return {
        tx,
        result: render('User', id, rec, groups),
        after: async () => {
          if (!isActive(next)) await this.onUserRevoked?.(tenant, id, userName);
          if (changed) await this.onUsersChanged?.(tenant, [id]);
        },
      };
    });
  }

  /** deleteUser removes a user, their indexes and their memberships in one commit, then revokes them. */
  async deleteUser(tenant: string, id: string, opts: WriteOptions = {}): Promise<void> {
    const k = new DirectoryKeys(tenant);
    await commit(this.store, async () => {
      const cur = await this.mustRead(k, 'User', id, opts);
      const userName = requiredName('User', cur.resource);
      const [gids, adds, nameOwner] = await Promise.all([
        this.store.smembers(k.groupsOf(id)),
        this.counter(k.addVersion(id)),
        this.store.get(k.name('User', userName)),
      ]);
      const groups = await Promise.all(gids.map((g) => this.read(k, 'Group', g)));
      const tx = new Tx();
      tx.claim(k.claim(`user:${id}`, cur.version + 1));
      tx.claim(k.claim(`uadd:${id}`, adds + 1));
      tx.del(k.record('User', id));
      tx.srem(k.ids('User'), id);
      if (nameOwner === id) tx.del(k.name('User', userName));
      this.reindexExternalId(tx, k, 'User', id, cur.resource, undefined);
      tx.del(k.groupsOf(id));
      tx.del(k.addVersion(id));
      const at = this.iso();
      gids.forEach((g, i) => {
        const grp = groups[i];
        if (grp === null || grp === undefined) return;
        tx.claim(k.claim(`group:${g}`, grp.version + 1));
        tx.put(k.record('Group', g), { ...grp, version: grp.version + 1, lastModified: at });
        tx.srem(k.members(g), id);
      });
      return { tx, result: undefined, after: async () => this.onUserRevoked?.(tenant, id, userName) };
    });
  }

  // ---- group writes ----

  /** createGroup stores a new group with its members (each must be an existing user, else 400 invalidValue). */
  async createGroup(tenant: string, input: ScimResource, opts: { source?: Source } = {}): Promise<DirectoryRecord> {
    const k = new DirectoryKeys(tenant);
    const memberIds = memberIdsOf(input);
    const resource = sanitize('Group', input);
    const name = requiredName('Group', resource);
    const at = this.iso();
    const id = newId(this.now());
    const rec: StoredRecord = { source: opts.source ?? 'scim', created: at, lastModified: at, version: 1, resource };
    return commit(this.store, async () => {
      await this.assertNameFree(k, 'Group', name, id);
      const tx = new Tx();
      tx.absent(k.name('Group', name));
      tx.absent(k.record('Group', id));
      await this.addMembers(tx, k, id, memberIds);
      tx.put(k.record('Group', id), rec);
      tx.put(k.name('Group', name), id);
      tx.sadd(k.ids('Group'), id);
      const ext = externalIdOf(resource);
      if (ext !== undefined) tx.sadd(k.externalId('Group', ext), id);
      return { tx, result: render('Group', id, rec, [...memberIds].sort()), after: () => this.changed(tenant, memberIds) };
    });
  }

  /** updateGroup applies a replace or a patch, including membership changes and renames, in one commit. */
  async updateGroup(tenant: string, id: string, mutate: Mutation, opts: WriteOptions = {}): Promise<DirectoryRecord> {
    const k = new DirectoryKeys(tenant);
    return commit(this.store, async () => {
      const cur = await this.mustRead(k, 'Group', id, opts);
      const before = await this.store.smembers(k.members(id));
      const out = mutate(render('Group', id, cur, before).resource);
      const after = memberIdsOf(out);
      const next = sanitize('Group', out);
      const name = requiredName('Group', next);
      const oldName = requiredName('Group', cur.resource);
      const rec: StoredRecord = { ...cur, lastModified: this.iso(), version: cur.version + 1, resource: next };
      const tx = new Tx();
      tx.claim(k.claim(`group:${id}`, rec.version));
      tx.put(k.record('Group', id), rec);
      const renamed = name !== oldName;
      if (fold(name) !== fold(oldName)) {
        await this.assertNameFree(k, 'Group', name, id);
        tx.absent(k.name('Group', name));
        tx.put(k.name('Group', name), id);
        tx.del(k.name('Group', oldName));
      }
      this.reindexExternalId(tx, k, 'Group', id, cur.resource, next);
      const had = new Set(before);
      const has = new Set(after);
      const added = after.filter((u) => !had.has(u));
      const removed = before.filter((u) => !has.has(u));
      await this.addMembers(tx, k, id, added);
      for (const u of removed) {
        tx.srem(k.members(id), u);
        tx.srem(k.groupsOf(u), id);
      }
      const touched = renamed ? [...new Set([...before, ...added])] : [...added, ...removed];
      return { tx, result: render('Group', id, rec, [...after].sort()), after: () => this.changed(tenant, touched) };
    });
  }

  /** deleteGroup removes a group, its indexes and every membership in one commit. */
  async deleteGroup(tenant: string, id: string, opts: WriteOptions = {}): Promise<void> {
    const k = new DirectoryKeys(tenant);
    await commit(this.store, async () => {
      const cur = await this.mustRead(k, 'Group', id, opts);
      const name = requiredName('Group', cur.resource);
      const [members, nameOwner] = await Promise.all([this.store.smembers(k.members(id)), this.store.get(k.name('Group', name))]);
      const tx = new Tx();
      tx.claim(k.claim(`group:${id}`, cur.version + 1));
      tx.del(k.record('Group', id));
      tx.srem(k.ids('Group'), id);
      if (nameOwner === id) tx.del(k.name('Group', name));
      this.reindexExternalId(tx, k, 'Group', id, cur.resource, undefined);
      tx.del(k.members(id));
      for (const u of members) tx.srem(k.groupsOf(u), id);
      return { tx, result: undefined, after: () => this.changed(tenant, members) };
    });
  }

  // ---- internals ----

  private async read(k: DirectoryKeys, kind: Kind, id: string): Promise<StoredRecord | null> {
    const raw = await this.store.get(k.record(kind, id));
    return raw === null ? null : (JSON.parse(raw) as StoredRecord);
  }

  /**
   * mustRead reads a record for a write: 404 when absent, 412 when a condition fails. The commit's
   * version claim makes the check hold at the moment of writing: a write in between is retried, and
   * the retry reads and checks again.
   */
  private async mustRead(k: DirectoryKeys, kind: Kind, id: string, opts: WriteOptions): Promise<StoredRecord> {
    const rec = await this.read(k, kind, id);
    if (rec === null) throw new ScimError(404, undefined, `${kind} ${id} not found`);
    checkConditions(kind, id, rec.version, opts);
    return rec;
  }

  private async counter(key: string): Promise<number> {
    const v = await this.store.get(key);
    return v === null ? 0 : Number(v);
  }

  private async assertNameFree(k: DirectoryKeys, kind: Kind, name: string, self: string): Promise<void> {
    const owner = await this.store.get(k.name(kind, name));
    if (owner !== null && owner !== self) {
      const attr = kind === 'User' ? 'userName' : 'displayName';
      throw new ScimError(409, 'uniqueness', `${attr} "${name.slice(0, 128)}" is already taken`);
    }
  }

  /**
   * addMembers adds users to a group. Per user it reads the add-version, then (in this order) checks the
   * user exists, and claims the next add-version: a delete that commits before the existence check is
   * seen there, and one that commits after it claims the same add-version, so one of the two retries.
   */
  private async addMembers(tx: Tx, k: DirectoryKeys, gid: string, uids: readonly string[]): Promise<void> {
    const found = await Promise.all(
      uids.map(async (u) => {
        const adds = await this.counter(k.addVersion(u));
        const exists = (await this.store.get(k.record('User', u))) !== null;
        return { u, adds, exists };
      }),
    );
    const missing = found.find((f) => !f.exists);
    if (missing !== undefined) throw badRequest('invalidValue', `members: no user with id "${missing.u.slice(0, 64)}"`);
    for (const { u, adds } of found) {
      tx.claim(k.claim(`uadd:${u}`, adds + 1));
      tx.put(k.addVersion(u), String(adds + 1));
      tx.sadd(k.groupsOf(u), gid);
      tx.sadd(k.members(gid), u);
    }
  }

  private reindexExternalId(tx: Tx, k: DirectoryKeys, kind: Kind, id: string, prev: ScimResource, next: ScimResource | undefined): void {
    const a = externalIdOf(prev);
    const b = next === undefined ? undefined : externalIdOf(next);
    if (a === b) return;
    if (a !== undefined) tx.srem(k.externalId(kind, a), id);
    if (b !== undefined) tx.sadd(k.externalId(kind, b), id);
  }

  private async groupRefs(k: DirectoryKeys, uid: string): Promise<GroupRef[]> {
    return this.groupNames(k, await this.store.smembers(k.groupsOf(uid)));
  }

  /** groupNames reads the display names of groups in one round trip, skipping groups that no longer exist. */
  private async groupNames(k: DirectoryKeys, gids: readonly string[]): Promise<GroupRef[]> {
    if (gids.length === 0) return [];
    const raws = await readAll(this.store, gids.map((g) => ({ op: 'get', key: k.record('Group', g) }) as const));
    const refs: GroupRef[] = [];
    gids.forEach((g, i) => {
      const raw = raws[i];
      if (typeof raw === 'string') refs.push({ id: g, displayName: requiredName('Group', (JSON.parse(raw) as StoredRecord).resource) });
    });
    return refs;
  }

  private async userSummary(k: DirectoryKeys, id: string): Promise<UserSummary | null> {
    const [rec, groups] = await Promise.all([this.read(k, 'User', id), this.groupRefs(k, id)]);
    return rec === null ? null : summarizeUser(id, rec, groups);
  }

  private async changed(tenant: string, userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.onUsersChanged?.(tenant, userIds);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

/**
 * checkConditions evaluates If-Match, then If-None-Match, against a record's version (RFC 9110 §13.2.2);
 * either failing is 412 in the SCIM error schema. A GET's If-None-Match answers 304 instead, in the
 * SCIM server.
 */
export function checkConditions(kind: Kind, id: string, version: number, opts: WriteOptions): void {
  if (opts.ifMatch !== undefined && !namesVersion(opts.ifMatch, version)) {
    throw new ScimError(412, undefined, `${kind} ${id} has changed: If-Match does not name its current version`);
  }
  if (opts.ifNoneMatch !== undefined && namesVersion(opts.ifNoneMatch, version)) {
    throw new ScimError(412, undefined, `${kind} ${id} is at a version If-None-Match names`);
  }
}
