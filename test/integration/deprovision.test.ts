/**
 * SCIM changes reach live sessions on every node: two Tollgates (node A, node B) share one Redis,
 * users sign in on A, SCIM writes go to A, and B is where the users are looked at.
 *
 *   SCIM -> A: Directory commit -> onUserRevoked / onUsersChanged -> session records in Redis
 *        -> invalidation (pub/sub) -> B drops its LRU copy -> B's next request reads the new record
 *
 * B has each session in its LRU (5 s TTL) before every change, so a change seen within the poll
 * bounds below can only have come through the invalidation, not a cache expiry.
 */
import t from 'tap';
import { startRedis, until } from '../helpers/redis.js';
import { startOrigin } from '../helpers/origin.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { ScimClient, type Json } from '../helpers/scim.js';
import { connectVia, controlCall, startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';
import type { AccessEntry } from '../../src/log.js';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP, SCHEMA_USER } from '../../src/scim/attributes.js';
import { PATCH_OP_SCHEMA } from '../../src/scim/patch.js';

const CLOUD = 'tollgate.test';
const SITE_HOST = 'www.origin-a.test';

/** StatusJson is the part of the status page's JSON this test reads. */
interface StatusJson {
  readonly node: string;
  readonly authenticated: boolean;
  readonly identifiedBy: string;
  readonly user: { loginName: string; displayName: string; department: string; groups: string[]; signedInAt: string } | null;
}

const redis = await startRedis();
const origin = await startOrigin();
const lab = await startLabIdpFixture();
const site = `http://${SITE_HOST}:${origin.port}/hello`;

/** startNode is one Tollgate on the shared Redis, its access log captured in memory. */
const startNode = (name: string): Promise<TestTollgate> =>
  startTestTollgate((dir) =>
    testConfig(dir, {
      nodeName: name,
      store: { type: 'redis', url: redis.url },
      locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true, surrogate: { enabled: true } }],
      connectPorts: [443, origin.port],
      hosts: { [SITE_HOST]: '127.0.0.1' },
      // SCIM provisioning: a login needs the user in the directory. No rate limit: this test is not about it.
      idps: [lab.config({ provisioning: 'scim', scimRateLimit: 0 })],
      limits: { shutdownGraceMs: 1000 },
    }),
  );
const a = await startNode('node-a');
const b = await startNode('node-b');
t.teardown(async () => {
  await Promise.all([a.close(), b.close()]);
  await Promise.all([lab.close(), origin.close()]);
  await redis.stop();
});

const issued = JSON.parse((await controlCall(a.controlPort, 'POST', '/admin/scim/token?idp=lab', a.admin)).body) as { tenant: string; token: string };
const scim = new ScimClient(`http://127.0.0.1:${a.controlPort}/${issued.tenant}/scim/v2`, issued.token);

/** created POSTs a resource and returns its id, failing loudly on anything but 201. */
async function created(path: string, body: unknown): Promise<string> {
  const r = await scim.post(path, body);
  if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${r.text}`);
  return (r.body as Json).id as string;
}

/** onB is a copy of a signed-in browser (cookies and source address) whose requests now reach node B. */
function onB(c: FlowClient): FlowClient {
  const copy = new FlowClient(b.proxyPort, c.localAddress);
  for (const [host, jar] of c.jar) copy.jar.set(host, new Map(jar));
  return copy;
}

async function status(c: FlowClient): Promise<StatusJson> {
  const r = await c.request(`http://ip.${CLOUD}/`, { headers: { accept: 'application/json' } });
  if (r.status !== 200) throw new Error(`status page: ${r.status} ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as StatusJson;
}

/** lineAfter waits for the node's access-log line, written from `mark` on, of a request from `ip` for `host`. */
async function lineAfter(node: TestTollgate, mark: number, ip: string, host: string): Promise<AccessEntry> {
  let entry: AccessEntry | undefined;
  await until(() => (entry = node.entries().slice(mark).find((e) => e.clientIp === ip && e.host === host)) !== undefined, 3000, `the access-log line of ${ip}'s request for ${host}`);
  return entry!;
}

/** visit requests the site through the client's node and returns the answer with that node's access-log line. */
async function visit(node: TestTollgate, c: FlowClient): Promise<{ status: number; entry: AccessEntry }> {
  const mark = node.entries().length;
  const reply = await c.request(site);
  return { status: reply.status, entry: await lineAfter(node, mark, c.localAddress, SITE_HOST) };
}

const sorted = (xs: readonly string[] | undefined): string[] => [...(xs ?? [])].sort();

// The directory, as an IdP provisions it. Bob's department differs from the one the IdP's assertion
// carries, so a session showing it shows the directory's view.
const aliceId = await created('/Users', { schemas: [SCHEMA_USER], userName: 'alice@example.com', displayName: 'Alice Directory', active: true });
const bobId = await created('/Users', {
  schemas: [SCHEMA_USER, SCHEMA_ENTERPRISE_USER],
  userName: 'bob@example.com',
  displayName: 'Bob Directory',
  active: true,
  [SCHEMA_ENTERPRISE_USER]: { department: 'Field Sales' },
});
const vpnId = await created('/Groups', { schemas: [SCHEMA_GROUP], displayName: 'VPN Users', members: [{ value: aliceId }, { value: bobId }] });
const salesId = await created('/Groups', { schemas: [SCHEMA_GROUP], displayName: 'Sales Team', members: [{ value: bobId }] });

// Both sign in on node A, each from an address of their own (the surrogate identifies them on ip.<cloud>).
const aliceOnA = new FlowClient(a.proxyPort, '127.0.0.10');
const bobOnA = new FlowClient(a.proxyPort, '127.0.0.11');
for (const [c, login, pw] of [[aliceOnA, 'alice@example.com', 'alice-pw'], [bobOnA, 'bob@example.com', 'bob-pw']] as const) {
  const done = await c.signIn(site, login, pw);
  if (done.reply.status !== 200 || done.url !== site) throw new Error(`${login} did not sign in on A: ${done.reply.status} ${done.reply.body.slice(0, 300)}`);
}
const aliceOnB = onB(aliceOnA);
const bobOnB = onB(bobOnA);

t.test('group membership, a group rename and a department change reach a live session on the other node', async (t) => {
  const before = await status(bobOnB);
  t.equal(before.node, 'node-b');
  t.equal(before.identifiedBy, 'surrogate');
  t.equal(before.user?.loginName, 'bob@example.com');
  t.equal(before.user?.department, 'Field Sales', "the session holds the directory's department, not the assertion's");
  t.same(sorted(before.user?.groups), ['Sales Team', 'VPN Users']);
  const line0 = await visit(b, bobOnB);
  t.equal(line0.status, 200);
  t.match(line0.entry, { node: 'node-b', login: 'bob@example.com', department: 'Field Sales', action: 'allowed' });
  t.same(sorted(line0.entry.groups), ['Sales Team', 'VPN Users']);
  t.same(sorted((await status(aliceOnB)).user?.groups), ['VPN Users'], 'Alice is in VPN Users too');

  // Okta's Group Push removes a member with a filtered path (RFC 7644 §3.5.2.2).
  const removed = await scim.patch(`/Groups/${vpnId}`, { schemas: [PATCH_OP_SCHEMA], Operations: [{ op: 'remove', path: `members[value eq "${bobId}"]` }] });
  t.equal(removed.status, 200, removed.text);
  t.same((removed.body as Json).members.map((m: { value: string }) => m.value), [aliceId], 'the group keeps Alice only');
  // Under the LRU's 5 s TTL: only the invalidation can make B see it this soon.
  await until(async () => sorted((await status(bobOnB)).user?.groups).join() === 'Sales Team', 2000, 'B to show Bob without VPN Users');
  const line1 = await visit(b, bobOnB);
  t.same(line1.entry.groups, ['Sales Team'], 'the access log of his next request no longer names VPN Users');
  t.equal(line1.entry.login, 'bob@example.com');
  t.same((await status(aliceOnB)).user?.groups, ['VPN Users'], "Alice's session keeps the group she is still in");

  const renamed = await scim.patch(`/Groups/${salesId}`, { schemas: [PATCH_OP_SCHEMA], Operations: [{ op: 'replace', path: 'displayName', value: 'Sales EMEA' }] });
  t.equal(renamed.status, 200, renamed.text);
  await until(async () => sorted((await status(bobOnB)).user?.groups).join() === 'Sales EMEA', 2000, 'B to show the new group name');
  t.same((await visit(b, bobOnB)).entry.groups, ['Sales EMEA'], 'the access log shows the new group name');

  const moved = await scim.patch(`/Users/${bobId}`, { schemas: [PATCH_OP_SCHEMA], Operations: [{ op: 'replace', path: `${SCHEMA_ENTERPRISE_USER}:department`, value: 'Marketing' }] });
  t.equal(moved.status, 200, moved.text);
  t.equal((moved.body as Json)[SCHEMA_ENTERPRISE_USER]?.department, 'Marketing');
  await until(async () => (await status(bobOnB)).user?.department === 'Marketing', 2000, 'B to show the new department');
  const line3 = await visit(b, bobOnB);
  t.equal(line3.status, 200);
  t.match(line3.entry, { node: 'node-b', login: 'bob@example.com', department: 'Marketing', action: 'allowed' }, 'the access log shows the new department');
  t.same(line3.entry.groups, ['Sales EMEA']);

  const mark = b.entries().length;
  const after = await status(bobOnB);
  const own = await lineAfter(b, mark, bobOnB.localAddress, `ip.${CLOUD}`);
  t.match(own, { action: 'own-host', login: 'bob@example.com', department: 'Marketing' }, "the status page's own access-log line has his department too");
  t.same(own.groups, ['Sales EMEA']);
  t.equal(after.user?.signedInAt, before.user?.signedInAt, 'the same session throughout: no new sign-in');
  t.equal(after.user?.displayName, 'Bob Directory');
  const signIns = [...a.app.lines, ...b.app.lines].filter((l) => l.msg === 'signed in' && l.login === 'bob@example.com');
  t.equal(signIns.length, 1, 'Bob signed in once, on A');
});

t.test('SCIM DELETE revokes the sessions on every node, and the deleted user cannot sign in again', async (t) => {
  // B has Alice's session in memory, by cookie and by surrogate.
  const known = await visit(b, aliceOnB);
  t.equal(known.status, 200, 'B knows Alice before the delete');
  t.equal(known.entry.login, 'alice@example.com');
  const tunnel = await connectVia(b.proxyPort, `${SITE_HOST}:${origin.port}`, aliceOnB.localAddress);
  t.equal(tunnel.status, 200, "B's CONNECT is Alice's by surrogate");
  tunnel.socket.destroy();

  const deleted = await scim.delete(`/Users/${aliceId}`);
  t.equal(deleted.status, 204, deleted.text);
  await until(async () => (await aliceOnB.request(site)).status === 307, 1000, 'B to send Alice to sign in');

  const line = await visit(b, aliceOnB);
  t.equal(line.status, 307);
  t.match(line.entry, { node: 'node-b', login: '', department: '', action: 'auth-redirect', reason: 'login_required' }, 'her next request is not attributed to her');
  t.same(line.entry.groups, []);
  const st = await status(aliceOnB);
  t.equal(st.authenticated, false, 'the status page on B does not know her');
  t.equal(st.user, null);
  t.equal((await connectVia(b.proxyPort, `${SITE_HOST}:${origin.port}`, aliceOnB.localAddress)).status, 403, 'nor does her surrogate');
  const revoked = a.app.lines.find((l) => l.msg === 'user deprovisioned: sessions revoked');
  t.match(revoked, { userName: 'alice@example.com', sessions: 1 }, 'A revoked her one session');

  t.equal((await scim.get(`/Users/${aliceId}`)).status, 404, 'she is gone from the directory');
  t.equal((await scim.get(`/Groups/${vpnId}`)).body?.members, undefined, 'and from her group');
  const bob = await visit(b, bobOnB);
  t.equal(bob.status, 200, "Bob's session is untouched");
  t.equal(bob.entry.login, 'bob@example.com');

  // With SCIM provisioning a login needs a directory entry. A deleted user has none, so she is an
  // unknown user (SAML_UNKNOWN_USER); SAML_INACTIVE_USER is for a user who is there but deactivated.
  const again = await aliceOnB.signIn(site, 'alice@example.com', 'alice-pw');
  t.equal(again.reply.status, 403, 'a new sign-in is refused');
  t.match(again.reply.body, /SAML_UNKNOWN_USER/, 'as an unknown user');
  t.notMatch(again.reply.body, /SAML_INACTIVE_USER/);
  t.match((await controlCall(b.controlPort, 'GET', '/metrics')).body, /tollgate_logins_total\{outcome="SAML_UNKNOWN_USER"\} 1/, 'B counted the refusal');
  t.equal((await status(aliceOnB)).authenticated, false, 'and made no session');
});
