import t from 'tap';
import { Metrics, Tally } from '../src/metrics.js';

/** value reads one sample of a metric from the registry's text exposition (what /metrics serves). */
async function value(m: Metrics, name: string, labels = ''): Promise<number | null> {
  const text = await m.registry.metrics();
  const esc = labels.replace(/[{}[\]().*+?^$|\\]/g, '\\$&');
  const hit = new RegExp(`^${name}${esc} (\\S+)$`, 'm').exec(text);
  return hit === null ? null : Number(hit[1]);
}

/** row names a label set as the data plane does: its values joined in label order. */
const row = (...values: string[]) => values.join(Tally.SEP);

t.test('tallied counts reach the counter when it is read, once each', async (t) => {
  const m = new Metrics();
  for (let i = 0; i < 5; i++) m.requestTally.add(row('allowed', '200', 'HTTP'));
  m.requestTally.add(row('blocked', '403', 'TUNNEL'));
  m.blockedTally.add(row('auth_required'));
  t.equal(await value(m, 'tollgate_requests_total', '{action="allowed",status="200",protocol="HTTP"}'), 5);
  t.equal(await value(m, 'tollgate_requests_total', '{action="blocked",status="403",protocol="TUNNEL"}'), 1);
  t.equal(await value(m, 'tollgate_blocked_total', '{reason="auth_required"}'), 1);
  t.equal(await value(m, 'tollgate_requests_total', '{action="allowed",status="200",protocol="HTTP"}'), 5, 'a second read does not count them again');
  m.requestTally.add(row('allowed', '200', 'HTTP'));
  t.equal(await value(m, 'tollgate_requests_total', '{action="allowed",status="200",protocol="HTTP"}'), 6, 'what comes after is added');
  // The admin API reads the counter through prom-client's get(), which runs the same hook.
  const got = await m.requests.get();
  t.equal(got.values.find((v) => v.labels.action === 'allowed')?.value, 6);
  // Direct increments (outside the hot path) and tallied ones add up.
  m.requests.inc({ action: 'allowed', status: '200', protocol: 'HTTP' });
  t.equal(await value(m, 'tollgate_requests_total', '{action="allowed",status="200",protocol="HTTP"}'), 7);
});

t.test('past its row limit a tally counts straight into the counter, nothing lost', async (t) => {
  const m = new Metrics();
  const n = Tally.MAX_ROWS + 10;
  for (let i = 0; i < n; i++) m.blockedTally.add(row(`code_${i}`));
  m.blockedTally.add(row('code_0'));
  m.blockedTally.add(row(`code_${n - 1}`));
  const got = await m.blocked.get();
  t.equal(got.values.length, n, 'every label set is there');
  t.equal(got.values.reduce((a, v) => a + v.value, 0), n + 2, 'and every count');
  t.equal(got.values.find((v) => v.labels.reason === 'code_0')?.value, 2, 'a tallied row');
  t.equal(got.values.find((v) => v.labels.reason === `code_${n - 1}`)?.value, 2, 'a row past the limit');
});

t.test('the active gauges read their levels when read', async (t) => {
  const m = new Metrics();
  t.equal(await value(m, 'tollgate_active_connections'), 0);
  m.activeConnections.inc();
  m.activeConnections.inc();
  m.activeTunnels.inc();
  t.equal(await value(m, 'tollgate_active_connections'), 2);
  t.equal(await value(m, 'tollgate_active_tunnels'), 1);
  m.activeConnections.dec();
  m.activeTunnels.dec();
  t.equal(await value(m, 'tollgate_active_connections'), 1);
  t.equal(await value(m, 'tollgate_active_tunnels'), 0);
});
