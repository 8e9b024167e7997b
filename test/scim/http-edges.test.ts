/**
 * SCIM over real HTTP at its edges: 50 racing creates of one name on each store, a group replaced by PUT,
 * the default 1 MiB body limit, and the per-tenant rate limit shared by two nodes over one Redis, down to
 * a real Tollgate's per-IdP `scimRateLimit`.
 *
 *   fetch -> 127.0.0.1:0 -> createScimHandler -> Directory / ScimRateLimiter -> embedded SQLite | Redis
 *
 * The rate limiter is a fixed window of one second whose number is in the counter's key. A burst that
 * starts at t0 and ends at t1 is counted in at most k = floor(t1/1000) - floor(t0/1000) + 1 windows,
 * and a tenant with limit L then gets between min(n, L) and k * L of its n requests through, however
 * the window boundaries fall. The real-clock checks assert exactly that range, never a duration.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/scim/body.js';
import { SCIM_ERROR_SCHEMA } from '../../src/scim/errors.js';
import { DEFAULT_SCIM_RATE_LIMIT } from '../../src/scim/ratelimit.js';
import { isError, ScimClient, startScim, type Reply } from '../helpers/scim.js';
import { backendStore, redisStore, SCIM_BACKENDS } from '../helpers/scim-stores.js';
import { controlCall, startTestTollgate, testConfig } from '../helpers/tollgate.js';

/** TapTest is the type of a subtest's `t`. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const newUser = (userName: string, extra: Record<string, unknown> = {}) => ({ schemas: [CORE], userName, active: true, ...extra });
const q = (filter: string): string => encodeURIComponent(filter);
const ids = (list: { value: string }[] | undefined): string[] => (list ?? []).map((m) => m.value).sort();

/** errorShape is what isError checks, as one value, so 49 replies compare in one assertion. */
function errorShape(r: Reply): Record<string, unknown> {
  return {
    status: r.status,
    contentType: r.headers.get('content-type'),
    schemas: r.body?.schemas,
    bodyStatus: r.body?.status,
    scimType: r.body?.scimType ?? null,
    detail: typeof r.body?.detail,
  };
}

/** scimError is the errorShape of an RFC 7644 §3.12 error reply; scimType null when it has none. */
function scimError(status: number, scimType: string | null): Record<string, unknown> {
  return { status, contentType: 'application/scim+json', schemas: [SCIM_ERROR_SCHEMA], bodyStatus: String(status), scimType, detail: 'string' };
}

/** spelling writes a name with the case of its letters flipped by the bits of i: 64 distinct spellings. */
function spelling(name: string, i: number): string {
  let letter = 0;
  return [...name].map((ch) => (ch.toLowerCase() === ch.toUpperCase() ? ch : (i >> letter++ % 6) & 1 ? ch.toUpperCase() : ch.toLowerCase())).join('');
}

/** tally counts statuses, for assertion messages. */
function tally(replies: readonly Reply[]): string {
  const n = new Map<number, number>();
  for (const r of replies) n.set(r.status, (n.get(r.status) ?? 0) + 1);
  return [...n].sort(([a], [b]) => a - b).map(([s, c]) => `${c}x${s}`).join(' ');
}

/** windowsTouched is how many one-second limiter windows [t0, t1] overlaps. */
function windowsTouched(t0: number, t1: number): number {
  return Math.floor(t1 / 1000) - Math.floor(t0 / 1000) + 1;
}

/**
 * checkLimited asserts what a fixed-window limit of `limit` guarantees for a burst of replies that
 * touched `windows` windows: only 200 and 429, between min(n, limit) and windows * limit passed, and
 * every 429 is a SCIM error with Retry-After in whole seconds, at most one window away (RFC 9110 §10.2.3).
 */
function checkLimited(t: TapTest, what: string, replies: readonly Reply[], limit: number, windows: number): void {
  const ok = replies.filter((r) => r.status === 200).length;
  const limited = replies.filter((r) => r.status === 429);
  t.equal(ok + limited.length, replies.length, `${what}: every reply is 200 or 429 (${tally(replies)})`);
  t.ok(ok >= Math.min(replies.length, limit), `${what}: at least the limit passes (${ok} of ${replies.length}, limit ${limit})`);
  t.ok(ok <= windows * limit, `${what}: at most the limit per window passes (${ok} in ${windows} window(s), limit ${limit})`);
  t.same(
    limited.map((r) => ({ ...errorShape(r), retryAfter: r.headers.get('retry-after') })),
    limited.map(() => ({ ...scimError(429, null), retryAfter: '1' })),
    `${what}: each 429 is a SCIM error with Retry-After: 1`,
  );
}

// ---- 1. racing creates ----

const RACERS = 50;

/**
 * race sends RACERS creates of one name at once, each spelled differently, and checks that exactly
 * one wins and every other gets 409 uniqueness. It returns the spellings, the winner's index and its reply.
 */
async function race(t: TapTest, what: string, name: string, create: (spelling: string, i: number) => Promise<Reply>): Promise<{ names: string[]; winner: number; made: Reply | undefined }> {
  const names = Array.from({ length: RACERS }, (_, i) => spelling(name, i));
  t.equal(new Set(names).size, RACERS, `every racer spells the ${what}'s name differently`);
  const replies = await Promise.all(names.map(create));
  const made = replies.filter((r) => r.status === 201);
  const refused = replies.filter((r) => r.status === 409);
  t.equal(made.length, 1, `exactly one ${what} create wins (${tally(replies)})`);
  t.equal(refused.length, RACERS - 1, 'every other one is 409');
  t.same(
    refused.map(errorShape),
    refused.map(() => scimError(409, 'uniqueness')),
    'each 409 is a SCIM error with scimType uniqueness',
  );
  const winner = replies.findIndex((r) => r.status === 201);
  return { names, winner, made: replies[winner] };
}

for (const backend of SCIM_BACKENDS) {
  t.test(`${RACERS} racing creates of one name (${backend}): one 201, the rest 409 uniqueness, one resource`, async (t) => {
    const h = await startScim(await backendStore(t, backend));
    t.teardown(() => h.close());
    const c = await h.client('acme/okta');
    // Warm the connections and the token check first, so the racers reach the directory together.
    await Promise.all(Array.from({ length: RACERS }, () => c.get('/ServiceProviderConfig')));

    // Users: userName is unique ignoring case (RFC 7643 §4.1.1 caseExact false, RFC 7644 §3.3 409 uniqueness).
    const userName = 'race.winner@example.com';
    const { names, winner, made } = await race(t, 'user', userName, (n) => c.post('/Users', newUser(n)));
    const user = made?.body;
    t.equal(user?.userName, names[winner], "the winner's spelling is kept");
    const byName = await c.get(`/Users?filter=${q(`userName eq "${userName.toUpperCase()}"`)}`);
    t.match(byName.body, { totalResults: 1, Resources: [{ id: user?.id }] }, 'a userName filter in any case finds the one user');
    t.equal((await c.get('/Users')).body.totalResults, 1, 'no losing create left a record behind');

    // Groups: displayName is unique ignoring case too. Even racers also add the user as a member, so a
    // losing create is seen to leave no membership behind; odd ones add none, as adding a member
    // serialises the creates that carry it (the user's add-version claim) and only the name index is left.
    const displayName = 'Race Condition Crew';
    const { winner: gwinner, made: gmade } = await race(t, 'group', displayName, (n, i) =>
      c.post('/Groups', { schemas: [GROUP], displayName: n, ...(i % 2 === 0 ? { members: [{ value: user?.id }] } : {}) }),
    );
    const group = gmade?.body;
    const byDisplay = await c.get(`/Groups?filter=${q(`displayName eq "${displayName.toLowerCase()}"`)}`);
    t.match(byDisplay.body, { totalResults: 1, Resources: [{ id: group?.id }] }, 'a displayName filter in any case finds the one group');
    t.equal((await c.get('/Groups')).body.totalResults, 1, 'no losing create left a group behind');
    const members = gwinner % 2 === 0 ? [user?.id] : [];
    t.same(ids((await c.get(`/Groups/${group?.id}`)).body.members), members, "the group has the winner's members");
    t.same(ids((await c.get(`/Users/${user?.id}`)).body.groups), members.length > 0 ? [group?.id] : [], 'and no losing create left the user in a group');
  });
}

// ---- 2. group replace ----

t.test('PUT /Groups/{id} replaces members and renames, ignores echoed read-only attributes, and refuses an unknown member whole', async (t) => {
  const h = await startScim();
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  const [ann, bob, cy] = await Promise.all(['ann@x', 'bob@x', 'cy@x'].map(async (n) => (await c.post('/Users', newUser(n))).body));
  const g = (await c.post('/Groups', { schemas: [GROUP], displayName: 'Night Shift', externalId: 'ext-night', members: [{ value: ann.id }, { value: bob.id }] })).body;
  t.match(g, { displayName: 'Night Shift', meta: { version: 'W/"1"' } });

  // RFC 7644 §3.5.1: PUT replaces; read-only attributes the client echoes (id, meta) are ignored.
  const put = await c.put(`/Groups/${g.id}`, {
    ...g,
    id: 'forged-id',
    meta: { resourceType: 'User', created: '1999-01-01T00:00:00Z', lastModified: '1999-01-01T00:00:00Z', version: 'W/"42"', location: 'http://evil.test/Groups/forged-id' },
    displayName: 'Day Shift',
    members: [{ value: bob.id, display: 'bob@x' }, { value: cy.id }],
  });
  t.equal(put.status, 200, 'the replace succeeds');
  t.match(put.body, {
    id: g.id,
    displayName: 'Day Shift',
    externalId: 'ext-night',
    meta: { resourceType: 'Group', created: g.meta.created, version: 'W/"2"', location: `${c.base}/Groups/${g.id}` },
  }, 'id and meta are the server’s, not the echoed ones');
  t.not(put.body.meta.lastModified, '1999-01-01T00:00:00Z', 'lastModified is not taken from the body');
  t.equal(put.headers.get('etag'), 'W/"2"');
  t.same(ids(put.body.members), [bob.id, cy.id].sort(), 'members are replaced: ann out, bob kept, cy in');
  const got = (await c.get(`/Groups/${g.id}`)).body;
  t.same(got, put.body, 'GET shows what PUT answered');
  t.same((await c.get(`/Users/${ann.id}`)).body.groups ?? [], [], 'the removed member has no groups');
  for (const u of [bob, cy]) t.match((await c.get(`/Users/${u.id}`)).body.groups, [{ value: g.id, display: 'Day Shift' }], `${u.userName} shows the new name`);
  t.equal((await c.get(`/Groups?filter=${q('displayName eq "night shift"')}`)).body.totalResults, 0, 'the old name no longer finds it');
  t.equal((await c.get(`/Groups?filter=${q('displayName eq "DAY SHIFT"')}`)).body.totalResults, 1, 'the new name does');

  // An unknown member fails the whole replace: no rename, no membership change (RFC 7644 §3.12 invalidValue).
  const ghost = '00000000-0000-7000-8000-000000000000';
  const bad = await c.put(`/Groups/${g.id}`, { schemas: [GROUP], displayName: 'Swing Shift', members: [{ value: ann.id }, { value: ghost }] });
  isError(t, bad, 400, 'invalidValue', 'an unknown member id');
  t.same((await c.get(`/Groups/${g.id}`)).body, got, 'GET shows the group unchanged, version included');
  t.same((await c.get(`/Users/${ann.id}`)).body.groups ?? [], [], 'the known member of the failed request was not added');
  t.equal((await c.get(`/Groups?filter=${q('displayName eq "Swing Shift"')}`)).body.totalResults, 0, 'nor was the group renamed');

  // A replace without members removes them all; a rename frees the old name for another group.
  const bare = await c.put(`/Groups/${g.id}`, { schemas: [GROUP], displayName: 'Day Shift' });
  t.equal(bare.status, 200);
  t.notOk('members' in bare.body, 'no members attribute: every member is removed');
  t.notOk('externalId' in bare.body, 'and the attributes the body left out are cleared');
  for (const u of [bob, cy]) t.same((await c.get(`/Users/${u.id}`)).body.groups ?? [], [], `${u.userName} is in no group`);
  t.equal((await c.post('/Groups', { schemas: [GROUP], displayName: 'Night Shift' })).status, 201, 'the old name is free again');
  isError(t, await c.put(`/Groups/${g.id}`, { schemas: [GROUP], displayName: 'NIGHT SHIFT' }), 409, 'uniqueness', 'renaming onto a taken name');
});

// ---- 3. the default body limit ----

/** userBody is a valid User create of exactly `size` bytes: the nickName fills it up. */
function userBody(userName: string, size: number): string {
  const base = JSON.stringify(newUser(userName, { nickName: '' }));
  const body = JSON.stringify(newUser(userName, { nickName: 'n'.repeat(size - Buffer.byteLength(base)) }));
  if (Buffer.byteLength(body) !== size) throw new Error(`userBody: ${Buffer.byteLength(body)} bytes, wanted ${size}`);
  return body;
}

/** chunkedPost sends a body with Transfer-Encoding: chunked (no Content-Length), in 64 KiB chunks. */
function chunkedPost(url: string, token: string, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
    req.end();
  });
}

t.test('the default body limit is 1 MiB: a body of exactly 1 MiB is served, one byte more is 413', async (t) => {
  t.equal(DEFAULT_MAX_BODY_BYTES, 1024 * 1024, 'the default is 1 MiB');
  const limit = 1024 * 1024;
  const h = await startScim();
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');

  const atLimit = await c.post('/Users', userBody('exact@x', limit));
  t.equal(atLimit.status, 201, 'exactly 1 MiB with Content-Length is not refused for size');
  t.equal(atLimit.body?.nickName?.length, limit - Buffer.byteLength(JSON.stringify(newUser('exact@x', { nickName: '' }))), 'and all of it was read');
  const chunkedAtLimit = await chunkedPost(`${c.base}/Users`, c.token as string, userBody('exact-chunked@x', limit));
  t.equal(chunkedAtLimit.status, 201, 'exactly 1 MiB, chunked, is not refused either');

  // RFC 9110 §15.5.14: 413 Content Too Large, in the SCIM error schema.
  const over = await c.post('/Users', userBody('over@x', limit + 1));
  isError(t, over, 413, undefined, 'one byte over, with Content-Length');
  t.equal(over.headers.get('connection'), 'close', 'the unread rest closes the connection');
  const chunkedOver = await chunkedPost(`${c.base}/Users`, c.token as string, userBody('over-chunked@x', limit + 1));
  t.equal(chunkedOver.status, 413, 'one byte over, chunked');
  t.match(JSON.parse(chunkedOver.body), { schemas: [SCIM_ERROR_SCHEMA], status: '413' });
  for (const n of ['over@x', 'over-chunked@x']) {
    t.equal((await c.get(`/Users?filter=${q(`userName eq "${n}"`)}`)).body.totalResults, 0, `${n} was not created`);
  }
  t.equal((await c.get('/Users')).body.totalResults, 2, 'only the two bodies at the limit were');
});

// ---- 4. rate limit ----

t.test('two nodes over one Redis share a tenant’s rate limit; other tenants and discovery are unaffected', async (t) => {
  const LIMIT = 3;
  const PER_NODE = 10;
  const keyPrefix = `tg-edges-rl-${randomUUID().slice(0, 8)}:`;
  const nodeA = await startScim({ store: await redisStore(t, keyPrefix), rateLimit: LIMIT });
  t.teardown(() => nodeA.close());
  const nodeB = await startScim({ store: await redisStore(t, keyPrefix), rateLimit: LIMIT });
  t.teardown(() => nodeB.close());
  // One token per tenant, generated on node A and used on both, as an IdP behind a balancer would.
  const oktaA = await nodeA.client('acme/okta');
  const oktaB = await nodeB.client('acme/okta', { token: oktaA.token as string });
  const entraA = await nodeA.client('acme/entra');
  const entraB = await nodeB.client('acme/entra', { token: entraA.token as string });

  // One tight burst: the limited tenant on both nodes, the other tenant within its own limit, and discovery.
  const t0 = Date.now();
  const [okta, entra, discovery] = await Promise.all([
    Promise.all(Array.from({ length: 2 * PER_NODE }, (_, i) => (i % 2 === 0 ? oktaA : oktaB).get('/Users'))),
    Promise.all(Array.from({ length: LIMIT }, (_, i) => (i % 2 === 0 ? entraA : entraB).get('/Users'))),
    Promise.all([oktaA, oktaB].flatMap((c) => ['/ServiceProviderConfig', '/ResourceTypes', '/Schemas'].map((p) => c.get(p)))),
  ]);
  const windows = windowsTouched(t0, Date.now());

  checkLimited(t, 'acme/okta across both nodes', okta, LIMIT, windows);
  // Per-node counting would let LIMIT through on each node, 2 × LIMIT in one window; the shared count
  // lets LIMIT through in all. (A burst across two windows is bounded by checkLimited alone.)
  if (windows === 1) t.equal(okta.filter((r) => r.status === 200).length, LIMIT, `exactly ${LIMIT} pass across both nodes (${tally(okta)})`);
  t.ok([0, 1].every((parity) => okta.some((r, i) => i % 2 === parity && r.status === 429)), 'both nodes refuse once the shared count is spent');
  t.same(entra.map((r) => r.status), entra.map(() => 200), 'acme/entra keeps its own budget: all of its requests pass');
  t.same(discovery.map((r) => r.status), discovery.map(() => 200), 'discovery is never limited, on either node');
  const logged = [...nodeA.operations, ...nodeB.operations].filter((o) => o.status === 429);
  t.ok(logged.length > 0 && logged.every((o) => o.tenant === 'acme/okta' && o.op === 'list'), 'only acme/okta list requests were limited');
});

t.test('a limiter built without a limit allows the default 5 requests per second', async (t) => {
  t.equal(DEFAULT_SCIM_RATE_LIMIT, 5, 'the default is ZIA’s 5 requests per second');
  // The clock is pinned 250 ms into a window, so the count does not depend on when the test runs.
  let now = Date.UTC(2030, 0, 1, 0, 0, 0, 250);
  const h = await startScim({ limiter: { now: () => now } });
  t.teardown(() => h.close());
  const c = await h.client('acme/okta');
  const burst = await Promise.all(Array.from({ length: 8 }, () => c.get('/Users')));
  checkLimited(t, 'default limit', burst, DEFAULT_SCIM_RATE_LIMIT, 1);
  t.equal(burst.filter((r) => r.status === 200).length, 5, `exactly 5 pass (${tally(burst)})`);
  now += 750;
  t.equal((await c.get('/Users')).status, 200, 'the next window starts a fresh count');
});

t.test('a real Tollgate applies each IdP’s scimRateLimit to its SCIM tenant', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-edges-idp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cert = join(dir, 'idp.pem');
  await writeFile(cert, makeSigningPair('Edges IdP').certPem);
  const idp = (id: string, extra: Record<string, unknown>) => ({
    id,
    name: id,
    ssoUrl: `https://${id}.test/sso`,
    certificate: cert,
    entityId: `https://${id}.test/entity`,
    provisioning: 'scim' as const,
    ...extra,
  });
  const orgId = '4242';
  const tg = await startTestTollgate((d) =>
    testConfig(d, {
      orgId,
      idps: [
        idp('okta', { default: true, scimRateLimit: 2 }),
        idp('entra', { domains: ['entra.test'], scimRateLimit: 0 }),
        // No scimRateLimit: the config default.
        idp('onelogin', { domains: ['onelogin.test'] }),
      ],
    }),
  );
  t.teardown(() => tg.close());
  const client = async (id: string): Promise<ScimClient> => {
    const gen = await controlCall(tg.controlPort, 'POST', `/admin/scim/token?idp=${id}`, tg.admin);
    t.equal(gen.status, 200, `a token for ${id}`);
    return new ScimClient(`http://127.0.0.1:${tg.controlPort}/${orgId}/${id}/scim/v2`, (JSON.parse(gen.body) as { token: string }).token);
  };
  const [okta, entra, onelogin] = [await client('okta'), await client('entra'), await client('onelogin')];

  const N = 12;
  const t0 = Date.now();
  const [o, e, l, d] = await Promise.all([
    Promise.all(Array.from({ length: N }, () => okta.get('/Users'))),
    Promise.all(Array.from({ length: N }, () => entra.get('/Users'))),
    Promise.all(Array.from({ length: N }, () => onelogin.get('/Users'))),
    Promise.all(Array.from({ length: 3 }, () => okta.get('/ServiceProviderConfig'))),
  ]);
  const windows = windowsTouched(t0, Date.now());
  checkLimited(t, 'okta, scimRateLimit 2', o, 2, windows);
  t.same(e.map((r) => r.status), e.map(() => 200), 'entra, scimRateLimit 0: the limit is off');
  checkLimited(t, 'onelogin, default scimRateLimit', l, 5, windows);
  t.same(d.map((r) => r.status), d.map(() => 200), 'discovery is not limited');
});
