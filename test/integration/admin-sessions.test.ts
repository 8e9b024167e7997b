/**
 * Sessions through the admin API, on two `tollgate start` processes sharing one Redis: the list on
 * one node shows sign-ins made on the other (where, how identified, last seen), and a revoke asked of
 * one node stops the other attributing the session within a second: one session, a location's, a user's.
 *
 *   browser -> node A (sign-in) ... admin -> node A POST /api/sessions/revoke -> Redis -> node B drops it
 */
import t, { type Test } from 'tap';
import { FlowClient } from '../helpers/flow.js';
import { startNode, startRedisLab, type NodeProcess } from '../helpers/node.js';
import { until } from '../helpers/redis.js';

t.setTimeout(120_000);

const rl = await startRedisLab('admin-sessions');
const { dir, origin } = rl;
const config = rl.config({
  locations: [
    { name: 'HQ', ips: ['127.0.0.16/29'], enforceAuthentication: true },
    { name: 'Branch', ips: ['127.0.0.24/29'], enforceAuthentication: true },
  ],
  hosts: { 'www.origin-a.test': '127.0.0.1' },
});
const a = await startNode(dir, 'node-a', config);
const b = await startNode(dir, 'node-b', config);
t.teardown(() => rl.close([a, b]));

const site = `http://www.origin-a.test:${origin.port}/hello`;

/** api calls one node's admin API with its token. */
async function api(node: NodeProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${node.controlPort}${path}`, {
    method,
    headers: { ...node.admin, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** signedIn signs a user in through node A and gives a client for the same browser on node B. */
async function signedIn(ip: string, user: string, password: string): Promise<FlowClient> {
  const onA = new FlowClient(a.proxyPort, ip);
  const r = await onA.signIn(site, user, password);
  if (r.reply.status !== 200) throw new Error(`${user} at ${ip}: sign-in ended with ${r.reply.status}`);
  const onB = new FlowClient(b.proxyPort, ip);
  for (const [h, jar] of onA.jar) onB.jar.set(h, new Map(jar));
  return onB;
}

type Row = { id: string; loginName: string; location: string; clientIp: string; idp: string; lastSeen: string | null; identifiedBy: string | null; cookies: number };

let aliceHq: FlowClient;
let aliceBranch: FlowClient;
let bobBranch: FlowClient;

/** revokedWithin asks `via` to revoke and waits until B refuses `gone`, then checks `kept` is still served. */
async function revokedWithin(t: Test, body: Record<string, string>, gone: FlowClient[], kept: FlowClient[], revoked: number): Promise<void> {
  const r = await api(a, 'POST', '/api/sessions/revoke', body);
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.equal(r.body.revoked, revoked, `${JSON.stringify(body)} ended ${revoked} session(s)`);
  const asked = Date.now();
  for (const c of gone) await until(async () => (await c.request(site)).status === 307, 1000, 'B sends the revoked browser to sign in');
  t.ok(Date.now() - asked <= 1000, `B stopped attributing within ${Date.now() - asked} ms`);
  for (const c of kept) t.equal((await c.request(site)).status, 200, 'the other sessions are untouched');
}

t.test('the session list on B shows the sign-ins made on A, filtered and paged', async (t) => {
  aliceHq = await signedIn('127.0.0.17', 'alice@example.com', 'alice-pw');
  aliceBranch = await signedIn('127.0.0.25', 'alice@example.com', 'alice-pw');
  bobBranch = await signedIn('127.0.0.26', 'bob@example.com', 'bob-pw');
  for (const c of [aliceHq, aliceBranch, bobBranch]) t.equal((await c.request(site)).status, 200, 'node B honours a session made on A');
  const all = await api(b, 'GET', '/api/sessions');
  t.equal(all.status, 200);
  t.equal(all.body.total, 3);
  const rows = all.body.sessions as Row[];
  t.same(rows.map((r) => `${r.loginName}@${r.location}/${r.clientIp}`).sort(), ['alice@example.com@Branch/127.0.0.25', 'alice@example.com@HQ/127.0.0.17', 'bob@example.com@Branch/127.0.0.26']);
  for (const r of rows) {
    t.equal(r.idp, 'lab');
    t.ok(r.lastSeen !== null && Date.now() - Date.parse(r.lastSeen) < 60_000, `${r.loginName} last seen recently`);
    t.equal(r.identifiedBy, 'cookie', 'identified by the site cookie');
    t.ok(r.cookies >= 1, 'with a host cookie planted');
  }
  t.equal((await api(b, 'GET', '/api/sessions?user=ALICE@example.com')).body.total, 2, 'by user, ignoring case');
  t.equal((await api(b, 'GET', '/api/sessions?location=branch')).body.total, 2, 'by location');
  t.equal((await api(b, 'GET', '/api/sessions?idp=lab&location=HQ')).body.total, 1, 'by IdP and location');
  t.equal((await api(b, 'GET', '/api/sessions?idp=other')).body.total, 0);
  const p1 = await api(b, 'GET', '/api/sessions?limit=2');
  const p2 = await api(b, 'GET', '/api/sessions?limit=2&offset=2');
  t.equal((p1.body.sessions as Row[]).length, 2);
  t.equal((p2.body.sessions as Row[]).length, 1);
  t.same([...(p1.body.sessions as Row[]), ...(p2.body.sessions as Row[])].map((r) => r.id).sort(), rows.map((r) => r.id).sort(), 'two pages cover every session once');
});

t.test('revoking one session, a location and a user on A reaches B within a second', async (t) => {
  const rows = (await api(a, 'GET', '/api/sessions?location=Branch&user=alice@example.com')).body.sessions as Row[];
  t.equal(rows.length, 1);
  await revokedWithin(t, { session: rows[0]!.id }, [aliceBranch], [aliceHq, bobBranch], 1);
  await revokedWithin(t, { location: 'hq' }, [aliceHq], [bobBranch], 1);
  await revokedWithin(t, { user: 'bob@example.com' }, [bobBranch], [], 1);
  t.equal((await api(b, 'GET', '/api/sessions')).body.total, 0, 'no session is left');

  // The application log is written asynchronously: the last revoke's line may still be on its way.
  const audited = () => a.lines.filter((l) => l.msg === 'admin audit' && l.action === 'sessions.revoke');
  await until(() => audited().length >= 3, 5000, "the three revokes reach A's log");
  const audit = audited();
  t.same(
    audit.map((l) => [l.who, l.outcome, Object.keys(l.target as object)[0]]),
    [
      ['node-a', 'ok', 'session'],
      ['node-a', 'ok', 'location'],
      ['node-a', 'ok', 'user'],
    ],
    'each revoke is audited with who and what',
  );
});

t.test('a revoke names exactly one known target', async (t) => {
  const cases: [unknown, number, string][] = [
    [{}, 400, 'bad_request'],
    [{ user: 'a', location: 'HQ' }, 400, 'bad_request'],
    [{ user: '' }, 400, 'bad_request'],
    [{ user: 7 }, 400, 'bad_request'],
    [{ everyone: true }, 400, 'bad_request'],
    [{ location: 'Mars' }, 404, 'unknown_location'],
    [{ session: 'no-such-session' }, 200, ''],
  ];
  for (const [body, status, code] of cases) {
    const r = await api(a, 'POST', '/api/sessions/revoke', body);
    t.equal(r.status, status, JSON.stringify(body));
    if (code !== '') t.match(r.body, { error: { code } });
  }
  const r = await fetch(`http://127.0.0.1:${a.controlPort}/api/sessions/revoke`, { method: 'POST', headers: { ...a.admin, accept: 'application/json' }, body: '{"user":' });
  t.equal(r.status, 400, 'a body that is not JSON is a 400');
  const big = await fetch(`http://127.0.0.1:${a.controlPort}/api/sessions/revoke`, { method: 'POST', headers: { ...a.admin, accept: 'application/json' }, body: JSON.stringify({ user: 'x'.repeat(10_000) }) });
  t.equal(big.status, 413, 'a body over the bound is a 413');
});
