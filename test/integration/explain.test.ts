/**
 * Explain a decision: /api/explain (and `tollgate explain`) run the proxy's own pipeline steps on a
 * request without sending it anywhere; on a table of requests its answer agrees with what the proxy
 * really does with the same request.
 *
 *   request -> proxy (real) -> status         request -> /api/explain -> steps, decision, outcome status
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BROWSER_UA, FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { startOrigin } from '../helpers/origin.js';
import { connectVia, startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';

const origin = await startOrigin();
const lab = await startLabIdpFixture();
const tg = await startTestTollgate((dir) =>
  testConfig(dir, {
    locations: [
      {
        name: 'lab',
        ips: ['127.0.0.0/28'],
        enforceAuthentication: true,
        surrogate: { enabled: true },
        sublocations: [{ name: 'kiosk', ips: ['127.0.0.8/30'], enforceAuthentication: false }],
      },
    ],
    connectPorts: [443, origin.port],
    hosts: { 'www.origin-a.test': '127.0.0.1', 'open.exempt.test': '127.0.0.1' },
    idps: [lab.config()],
    authentication: { exemptions: { hosts: ['*.exempt.test'] } },
  }),
);
t.teardown(async () => {
  await tg.close();
  await lab.close();
  await origin.close();
});

const site = `http://www.origin-a.test:${origin.port}/hello`;
type Explanation = { steps: { step: string; outcome: string }[]; decision: { kind: string; code?: string }; outcome: { status: number | null; action: string; reason: string }; location: { name: string; sublocation: string | null; cidr: string } | null; exemption: { pattern: string } | null; identity: { login: string; by: string } | null };

async function explain(q: Record<string, string>): Promise<Explanation> {
  const r = await fetch(`http://127.0.0.1:${tg.controlPort}/api/explain?${new URLSearchParams(q)}`, { headers: { ...tg.admin, accept: 'application/json' } });
  if (r.status !== 200) throw new Error(`explain: ${r.status} ${await r.text()}`);
  return (await r.json()) as Explanation;
}

/** predicted is the status the explanation says the client gets: a forward reaches the origin (200), as does Tollgate's own page. */
const predicted = (e: Explanation) => e.outcome.status ?? 200;

const navigation = { 'user-agent': BROWSER_UA, accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

t.test('explain agrees with the proxy on a table of requests', async (t) => {
  // alice signs in at 127.0.0.4: a cookie on the site, and the IP surrogate for tunnels.
  const alice = new FlowClient(tg.proxyPort, '127.0.0.4');
  t.equal((await alice.signIn(site, 'alice@example.com', 'alice-pw')).reply.status, 200, 'alice signed in');

  const cases: [name: string, real: () => Promise<number>, q: Record<string, string>, decided: string, code: string][] = [
    ['an address in no location', async () => (await viaProxy(tg.proxyPort, site, { localAddress: '127.0.0.66' })).status, { url: site, clientIp: '127.0.0.66' }, 'locate', 'unknown_source'],
    ['a sublocation without sign-in', async () => (await viaProxy(tg.proxyPort, site, { localAddress: '127.0.0.9' })).status, { url: site, clientIp: '127.0.0.9' }, '', ''],
    ['an unidentified page load', async () => (await viaProxy(tg.proxyPort, site, { localAddress: '127.0.0.3', headers: navigation })).status, { url: site, clientIp: '127.0.0.3', browser: '1' }, 'identify', 'login_required'],
    ['an unidentified script', async () => (await viaProxy(tg.proxyPort, site, { localAddress: '127.0.0.3' })).status, { url: site, clientIp: '127.0.0.3' }, 'identify', 'auth_required'],
    ['an exempt host', async () => (await viaProxy(tg.proxyPort, `http://open.exempt.test:${origin.port}/hello`, { localAddress: '127.0.0.3' })).status, { url: `http://open.exempt.test:${origin.port}/hello`, clientIp: '127.0.0.3' }, 'exempt', ''],
    ['the status page', async () => (await viaProxy(tg.proxyPort, 'http://ip.tollgate.test/?probed=1', { localAddress: '127.0.0.3', headers: { accept: 'application/json' } })).status, { url: 'http://ip.tollgate.test/?probed=1', clientIp: '127.0.0.3' }, 'ownHost', ''],
    ['a tunnel to a port not allowed', async () => (await connectVia(tg.proxyPort, 'www.origin-a.test:8443', '127.0.0.4')).status, { url: 'https://www.origin-a.test:8443/', clientIp: '127.0.0.4' }, 'connectPort', 'port_not_allowed'],
    ['a signed-in user by cookie', async () => (await alice.request(site)).status, { url: site, clientIp: '127.0.0.4', user: 'alice@example.com', browser: '1' }, 'identify', ''],
    ['a signed-in user by surrogate (tunnel)', async () => {
      const c = await connectVia(tg.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.4');
      c.socket.destroy();
      return c.status;
    }, { url: `https://www.origin-a.test:${origin.port}/`, clientIp: '127.0.0.4' }, 'identify', ''],
    ['a tunnel from an unidentified address', async () => (await connectVia(tg.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.5')).status, { url: `https://www.origin-a.test:${origin.port}/`, clientIp: '127.0.0.5' }, 'identify', 'auth_required'],
  ];
  for (const [name, real, q, decided, code] of cases) {
    const e = await explain(q);
    const actual = await real();
    t.equal(predicted(e), actual, `${name}: explain says ${predicted(e)}, the proxy answered ${actual}`);
    const last = e.steps[e.steps.length - 1]!;
    if (decided !== '') t.same([last.step, last.outcome], [decided, 'decided'], `${name}: decided by ${decided}`);
    else t.equal(e.decision.kind === 'forward' || e.decision.kind === 'own', true, `${name}: forwarded or served`);
    if (code !== '') t.equal(e.outcome.reason, code, `${name}: ${code}`);
  }
});

t.test('the answer names the rule: CIDR, sublocation, exemption pattern, identity', async (t) => {
  const kiosk = await explain({ url: site, clientIp: '127.0.0.9' });
  t.same(kiosk.location, { name: 'lab', sublocation: 'kiosk', cidr: '127.0.0.8/30', enforceAuthentication: false });
  t.same(kiosk.steps.map((s) => s.step), ['locate', 'loop', 'connectPort', 'token', 'ownHost', 'exempt', 'inspect', 'identify'], 'every step, in the proxy order');
  t.match((await explain({ url: site, clientIp: '127.0.0.3' })).location, { name: 'lab', sublocation: null, cidr: '127.0.0.0/28' });
  t.same((await explain({ url: 'http://open.exempt.test/', clientIp: '127.0.0.3' })).exemption, { pattern: '*.exempt.test' });
  const ssoHost = new URL(lab.idp.ssoUrl).hostname;
  t.match((await explain({ url: `${lab.idp.ssoUrl}`, clientIp: '127.0.0.3' })).exemption, { pattern: `${ssoHost} (an IdP's SSO host)` });
  t.match((await explain({ url: site, clientIp: '127.0.0.4', user: 'alice@example.com' })).identity, { login: 'alice@example.com', by: 'cookie' });
  t.match((await explain({ url: `https://www.origin-a.test:${origin.port}/`, clientIp: '127.0.0.4' })).identity, { login: 'alice@example.com', by: 'surrogate' });
  const bad = await fetch(`http://127.0.0.1:${tg.controlPort}/api/explain?url=ftp://x/&clientIp=1.2.3.4`, { headers: { ...tg.admin, accept: 'application/json' } });
  t.equal(bad.status, 400);
  const badIp = await fetch(`http://127.0.0.1:${tg.controlPort}/api/explain?url=http://x/&clientIp=nope`, { headers: { ...tg.admin, accept: 'application/json' } });
  t.equal(badIp.status, 400);
});

t.test('tollgate explain prints the steps and the outcome', async (t) => {
  const ctl = join(tg.dataDir, 'ctl.yaml');
  writeFileSync(ctl, `listeners: { control: 127.0.0.1:${tg.controlPort} }\n`);
  const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../src/cli.ts'), 'explain', site, '--client-ip', '127.0.0.3', '--browser', '--config', ctl], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TOLLGATE_ADMIN_TOKEN: tg.adminToken } });
    let stdout = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout }));
  });
  t.equal(out.code, 0);
  t.match(out.stdout, `GET ${site} from 127.0.0.3 (a browser)`);
  t.match(out.stdout, '  location lab (127.0.0.0/28; sign-in required)');
  t.match(out.stdout, '  identify: login');
  t.match(out.stdout, '=> 307 auth-redirect (login_required): sent to the gateway to sign in');
});
