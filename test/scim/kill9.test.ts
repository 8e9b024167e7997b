/**
 * kill -9 during a stream of real SCIM writes on the embedded store: after a restart on the same
 * directory every acknowledged write is there with the acknowledged content, and nothing
 * half-written is.
 *
 *   test --(8 requests in flight: user creates and PATCHes, group creates, member adds and removes,
 *           renames)--> scim-child (startScim over an EmbeddedStore in dir)
 *        --SIGKILL after a random number of 2xx answers--> scim-child again on dir --> read back over SCIM
 *
 * A resource has at most one write in flight, so after the restart it is either as its last 2xx
 * answer showed it or, when a write to it was unanswered at the kill, as that write would make it.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ScimClient, type Json, type Reply } from '../helpers/scim.js';

const ROOT = join(import.meta.dirname, '../..');
const CHILD = join(ROOT, 'test/helpers/scim-child.ts');
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const IN_FLIGHT = 8;
/** ROUNDS of stream, kill -9 and restart on one directory: later rounds crash a store that recovered once already. */
const ROUNDS = 3;
const PAGE = 200;

/** ScimChild is a running scim-child process and a client for its tenant. */
interface ScimChild {
  readonly proc: ChildProcess;
  readonly client: ScimClient;
  readonly exited: Promise<void>;
  stderr(): string;
  stop(): Promise<void>;
}

async function startChild(dir: string): Promise<ScimChild> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const ready = await new Promise<{ base: string; token: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`scim-child not ready after 30 s: ${err}`));
    }, 30_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve(JSON.parse(out.slice(0, nl)) as { base: string; token: string });
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`scim-child exited before it was ready: ${err}`));
    });
  });
  return {
    proc,
    client: new ScimClient(ready.base, ready.token),
    exited,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const force = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      proc.kill('SIGTERM');
      await exited;
      clearTimeout(force);
    },
  };
}

type Kind = 'User' | 'Group';

/** Model is what the stream's writes decide about a resource: the attributes they set, and meta.version. */
type Model = Record<string, unknown>;

/** Tracked is one resource the stream created (or tried to). */
interface Tracked {
  readonly kind: Kind;
  id: string | null;
  /** acked is the last 2xx answer, as the store keeps it (see `stored`); null until the create is answered. */
  acked: Json | null;
  /** unanswered is the model the write in flight at the kill would have produced; null when none was. */
  unanswered: Model | null;
  busy: boolean;
  /** names are every userName or displayName a write gave it, answered or not. */
  readonly names: string[];
}

const versionOf = (r: Json): number => Number(/(\d+)/.exec(String(r?.meta?.version))?.[1] ?? NaN);
const memberIds = (r: Json): string[] => ((r?.members ?? []) as { value: string }[]).map((m) => m.value).sort();

function model(kind: Kind, r: Json): Model {
  return kind === 'User'
    ? { userName: r.userName, displayName: r.displayName, externalId: r.externalId, active: r.active, department: r[ENTERPRISE]?.department, version: versionOf(r) }
    : { displayName: r.displayName, members: memberIds(r), version: versionOf(r) };
}

/**
 * stored is a resource without what is not the resource's own state: meta.location and $ref (the
 * port changes on restart), and a user's `groups`, which group writes change (RFC 7643 §4.1.2), with
 * the digest of them in the user's meta.version (`W/"<version>-<digest>"` keeps `W/"<version>"`).
 */
function stored(kind: Kind, r: Json): Json {
  const copy = structuredClone(r) as Json;
  delete copy.meta.location;
  if (kind === 'User') {
    delete copy.groups;
    copy.meta.version = String(copy.meta.version).replace(/-[0-9a-f]+"$/, '"');
  } else if (copy.members !== undefined) {
    copy.members = (copy.members as { value: string; type?: string }[]).map(({ value, type }) => ({ value, type })).sort((x, y) => (x.value < y.value ? -1 : 1));
  }
  return copy;
}

/** listAll pages through a collection (RFC 7644 §3.4.2.4): the total it reports and what it lists. */
async function listAll(c: ScimClient, endpoint: '/Users' | '/Groups'): Promise<{ total: number; listed: Json[] }> {
  const listed: Json[] = [];
  for (let start = 1; ; start += PAGE) {
    const r = await c.get(`${endpoint}?startIndex=${start}&count=${PAGE}`);
    if (r.status !== 200) throw new Error(`GET ${endpoint}: ${r.status} ${r.text}`);
    listed.push(...((r.body.Resources ?? []) as Json[]));
    if (start + PAGE > r.body.totalResults) return { total: r.body.totalResults as number, listed };
  }
}

async function filtered(c: ScimClient, endpoint: '/Users' | '/Groups', filter: string): Promise<string[]> {
  const r = await c.get(`${endpoint}?filter=${encodeURIComponent(filter)}`);
  if (r.status !== 200) throw new Error(`GET ${endpoint}?filter=${filter}: ${r.status} ${r.text}`);
  return ((r.body.Resources ?? []) as Json[]).map((x) => x.id as string);
}

// A seeded generator (mulberry32), so a failing run can be replayed with KILL9_SEED=<seed>.
const SEED = Number(process.env.KILL9_SEED ?? Math.floor(Date.now() % 2 ** 31));
t.comment(`seed ${SEED} (KILL9_SEED=${SEED} replays this run's choices)`);
let prngState = SEED >>> 0;
function random(): number {
  prngState = (prngState + 0x6d2b79f5) >>> 0;
  let x = prngState;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(random() * xs.length)];

t.test('every acknowledged SCIM write survives kill -9, and nothing half-written is left', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-scim-kill9-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let child = await startChild(dir);
  t.teardown(() => child.stop());

  const users: Tracked[] = [];
  const groups: Tracked[] = [];
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  let serial = 0;
  // Per round: where the kill comes, and what was going on then.
  let killAt = 0;
  let acks = 0;
  let inFlight = 0;
  let inFlightAtKill = -1;
  let killed = false;

  /** send makes one write to `res` and records its answer; the 2xx answer must show what `expect` predicts. */
  async function send(res: Tracked, method: string, path: string, body: unknown, expect: Model): Promise<void> {
    res.busy = true;
    inFlight++;
    let reply: Reply;
    try {
      reply = await child.client.req(method, path, body);
    } catch (err) {
      // No answer: after the kill the write may or may not have committed; before it, it is a failure.
      if (killed) res.unanswered = expect;
      else unexpected.push(`${method} ${path}: ${(err as Error).message}`);
      return;
    } finally {
      inFlight--;
      res.busy = false;
    }
    if (reply.status < 200 || reply.status > 299) {
      unexpected.push(`${method} ${path}: ${reply.status} ${reply.text.slice(0, 300)}`);
      return;
    }
    if (!isDeepStrictEqual(model(res.kind, reply.body), expect)) {
      mismatched.push(`${method} ${path}: expected ${JSON.stringify(expect)}, answered ${JSON.stringify(model(res.kind, reply.body))}`);
    }
    res.id ??= reply.body.id as string;
    res.acked = stored(res.kind, reply.body);
    if (++acks === killAt) {
      inFlightAtKill = inFlight;
      killed = true;
      child.proc.kill('SIGKILL');
    }
  }

  function createUser(): Promise<void> {
    const n = ++serial;
    const res: Tracked = { kind: 'User', id: null, acked: null, unanswered: null, busy: false, names: [`user${n}@kill9.test`] };
    users.push(res);
    const body = { schemas: [USER, ENTERPRISE], userName: res.names[0], displayName: `User ${n}`, externalId: `ext-${n}`, active: true, [ENTERPRISE]: { department: `D${n}` } };
    return send(res, 'POST', '/Users', body, { userName: res.names[0], displayName: `User ${n}`, externalId: `ext-${n}`, active: true, department: `D${n}`, version: 1 });
  }

  function patchUser(res: Tracked): Promise<void> {
    const n = ++serial;
    const active = random() < 0.8;
    const ops = [
      { op: 'replace', path: 'displayName', value: `User v${n}` },
      { op: 'replace', path: `${ENTERPRISE}:department`, value: `D${n}` },
      { op: 'replace', path: 'active', value: active },
    ];
    const prev = model('User', res.acked);
    const expect = { ...prev, displayName: `User v${n}`, department: `D${n}`, active, version: (prev.version as number) + 1 };
    return send(res, 'PATCH', `/Users/${res.id}`, { schemas: [PATCH_OP], Operations: ops }, expect);
  }

  function createGroup(members: readonly string[]): Promise<void> {
    const name = `group ${++serial}`;
    const res: Tracked = { kind: 'Group', id: null, acked: null, unanswered: null, busy: false, names: [name] };
    groups.push(res);
    const body = { schemas: [GROUP], displayName: name, members: members.map((value) => ({ value })) };
    return send(res, 'POST', '/Groups', body, { displayName: name, members: [...members].sort(), version: 1 });
  }

  /** changeGroup adds a member, removes one, or renames the group, as Okta's Group Push does (RFC 7644 §3.5.2). */
  function changeGroup(res: Tracked, answered: readonly Tracked[]): Promise<void> {
    const prev = model('Group', res.acked);
    const members = prev.members as string[];
    const next = { ...prev, version: (prev.version as number) + 1 };
    const r = random();
    const outsider = pick(answered.filter((u) => !members.includes(u.id!)));
    if (r < 0.45 && outsider !== undefined) {
      const ops = [{ op: 'add', path: 'members', value: [{ value: outsider.id }] }];
      return send(res, 'PATCH', `/Groups/${res.id}`, { schemas: [PATCH_OP], Operations: ops }, { ...next, members: [...members, outsider.id!].sort() });
    }
    const member = pick(members);
    if (r < 0.8 && member !== undefined) {
      const ops = [{ op: 'remove', path: `members[value eq "${member}"]` }];
      return send(res, 'PATCH', `/Groups/${res.id}`, { schemas: [PATCH_OP], Operations: ops }, { ...next, members: members.filter((m) => m !== member) });
    }
    const name = `group ${++serial}`;
    res.names.push(name);
    const ops = [{ op: 'replace', path: 'displayName', value: name }];
    return send(res, 'PATCH', `/Groups/${res.id}`, { schemas: [PATCH_OP], Operations: ops }, { ...next, displayName: name });
  }

  /** nextWrite picks a write to a resource that has none in flight. */
  function nextWrite(): Promise<void> {
    const answered = users.filter((u) => u.acked !== null);
    const r = random();
    if (answered.length < 12 || r < 0.2) return createUser();
    if (groups.length < 4 || r < 0.28) {
      const members = new Set(Array.from({ length: Math.floor(random() * 4) }, () => pick(answered)!.id!));
      return createGroup([...members]);
    }
    const user = pick(answered.filter((u) => !u.busy));
    if (r < 0.5 && user !== undefined) return patchUser(user);
    const group = pick(groups.filter((g) => g.acked !== null && !g.busy));
    return group === undefined ? createUser() : changeGroup(group, answered);
  }

  /**
   * verify reads everything back from the restarted child and lists what is wrong. It then settles
   * the writes unanswered at the kill (committed or not, as found), so the stream can go on.
   */
  async function verify(c: ScimClient): Promise<string[]> {
    const problems: string[] = [];

    // Every acknowledged write is there, with the acknowledged content (or the unanswered write applied).
    for (const res of [...users, ...groups]) {
      const endpoint = res.kind === 'User' ? '/Users' : '/Groups';
      const unanswered = res.unanswered;
      res.unanswered = null;
      if (res.acked === null) {
        if (unanswered === null) continue;
        // A create unanswered at the kill: absent, or present exactly as sent.
        const attr = res.kind === 'User' ? 'userName' : 'displayName';
        const ids = await filtered(c, endpoint, `${attr} eq "${res.names[0]}"`);
        if (ids.length === 0) continue;
        const got = await c.get(`${endpoint}/${ids[0]}`);
        if (ids.length === 1 && got.status === 200 && isDeepStrictEqual(model(res.kind, got.body), unanswered)) {
          res.id = ids[0]!;
          res.acked = stored(res.kind, got.body);
          continue;
        }
        problems.push(`unanswered create of ${res.names[0]} left ${JSON.stringify(ids)}: ${got.status} ${got.text.slice(0, 300)}`);
        continue;
      }
      const got = await c.get(`${endpoint}/${res.id}`);
      if (got.status !== 200) {
        problems.push(`${res.kind} ${res.id} was acknowledged as ${JSON.stringify(res.acked)}, and is gone: ${got.status}`);
        continue;
      }
      const now = stored(res.kind, got.body);
      if (isDeepStrictEqual(now, res.acked)) continue;
      if (unanswered !== null && isDeepStrictEqual(model(res.kind, now), unanswered)) {
        res.acked = now;
        continue;
      }
      problems.push(`${res.kind} ${res.id}: acknowledged ${JSON.stringify(res.acked)}${unanswered === null ? '' : ` (or, unanswered, ${JSON.stringify(unanswered)})`}, found ${JSON.stringify(now)}`);
    }

    // Nothing half-written: the id sets, the name and externalId indexes, the records and both sides
    // of every membership agree.
    const userList = await listAll(c, '/Users');
    const groupList = await listAll(c, '/Groups');
    if (userList.total !== userList.listed.length) problems.push(`/Users counts ${userList.total} but lists ${userList.listed.length}: an id without its record`);
    if (groupList.total !== groupList.listed.length) problems.push(`/Groups counts ${groupList.total} but lists ${groupList.listed.length}: an id without its record`);
    const known = new Set([...users, ...groups].map((r) => r.id).filter((id) => id !== null));
    const usersById = new Map(userList.listed.map((u) => [u.id as string, u]));
    const groupsById = new Map(groupList.listed.map((g) => [g.id as string, g]));
    for (const u of userList.listed) {
      if (!known.has(u.id)) problems.push(`user ${u.id} (${u.userName}) was never created`);
      const byName = await filtered(c, '/Users', `userName eq "${u.userName}"`);
      if (!isDeepStrictEqual(byName, [u.id])) problems.push(`userName eq "${u.userName}" finds ${JSON.stringify(byName)}, /Users lists ${u.id}`);
      if (u.externalId !== undefined) {
        const byExt = await filtered(c, '/Users', `externalId eq "${u.externalId}"`);
        if (!isDeepStrictEqual(byExt, [u.id])) problems.push(`externalId eq "${u.externalId}" finds ${JSON.stringify(byExt)}, /Users lists ${u.id}`);
      }
      for (const g of (u.groups ?? []) as { value: string }[]) {
        if (!memberIds(groupsById.get(g.value)).includes(u.id)) problems.push(`user ${u.id} lists group ${g.value}, which does not have them as a member`);
      }
    }
    for (const g of groupList.listed) {
      if (!known.has(g.id)) problems.push(`group ${g.id} (${g.displayName}) was never created`);
      const byName = await filtered(c, '/Groups', `displayName eq "${g.displayName}"`);
      if (!isDeepStrictEqual(byName, [g.id])) problems.push(`displayName eq "${g.displayName}" finds ${JSON.stringify(byName)}, /Groups lists ${g.id}`);
      for (const m of memberIds(g)) {
        const u = usersById.get(m);
        if (u === undefined) problems.push(`group ${g.id} has member ${m}, who does not exist`);
        else if (!((u.groups ?? []) as { value: string }[]).some((x) => x.value === g.id)) problems.push(`group ${g.id} has member ${m}, whose groups do not list it`);
      }
    }
    if (userList.listed.length < users.filter((u) => u.acked !== null).length) problems.push('fewer users listed than were acknowledged');

    // A name that no resource holds is free: no unique-index entry outlived (or went without) its
    // record. Each create here is a write too, so it joins what the next round checks.
    const kinds = [
      { kind: 'User', path: '/Users', attr: 'userName', schema: USER, tracked: users, listed: userList.listed },
      { kind: 'Group', path: '/Groups', attr: 'displayName', schema: GROUP, tracked: groups, listed: groupList.listed },
    ] as const;
    for (const { kind, path, attr, schema, tracked, listed } of kinds) {
      const held = new Set(listed.map((r) => String(r[attr]).toLowerCase()));
      for (const name of new Set(tracked.flatMap((r) => r.names))) {
        if (held.has(name)) continue;
        const r = await c.post(path, { schemas: [schema], [attr]: name });
        if (r.status !== 201) problems.push(`${attr} ${name} belongs to no ${kind.toLowerCase()}, yet creating it answers ${r.status} ${r.text.slice(0, 200)}`);
        else tracked.push({ kind, id: r.body.id as string, acked: stored(kind, r.body), unanswered: null, busy: false, names: [name] });
      }
    }
    return problems;
  }

  for (let round = 1; round <= ROUNDS; round++) {
    // Anywhere from a short stream to a long one; printed, so a failure can be told apart by it.
    killAt = 80 + Math.floor(random() * 150);
    acks = 0;
    inFlightAtKill = -1;
    killed = false;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (!killed && unexpected.length === 0) await nextWrite();
      }),
    );
    // A stream stopped by a failure never reached the kill: kill now, so the checks below still run.
    if (!killed) child.proc.kill('SIGKILL');
    await child.exited;
    t.same(unexpected, [], `round ${round}: every write before the kill was answered with a 2xx`);
    t.same(mismatched, [], `round ${round}: every 2xx answer showed what its write asked for`);
    t.equal(child.proc.signalCode, 'SIGKILL', `round ${round}: the child was killed, not crashed: ${child.stderr()}`);
    t.ok(inFlightAtKill > 0, `round ${round}: killed after ${killAt} acknowledged writes, with ${inFlightAtKill} more in flight`);
    const unanswered = [...users, ...groups].filter((r) => r.unanswered !== null).length;

    child = await startChild(dir);
    const problems = await verify(child.client);
    t.same(problems, [], `round ${round}: after the restart, ${users.length} users and ${groups.length} groups tracked, ${unanswered} writes unanswered at the kill; all consistent`);
    if (problems.length > 0 || unexpected.length > 0) break;
  }
});
