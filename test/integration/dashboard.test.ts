/**
 * The ops dashboard in Chromium: sign in with the admin token, the overview after some traffic,
 * revoke a user's session, stage and activate a change (and see a refused one's errors inline).
 * Screenshots go to .tap/screenshots/ (not committed).
 *
 *   Chromium -> control listener (loopback, direct) -> /signin -> / -> /users -> /config
 */
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, chromiumArgs, chromiumMissing } from '../helpers/browser.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { startOrigin } from '../helpers/origin.js';
import { controlCall, startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';

t.setTimeout(120_000);
const missing = chromiumMissing();
if (missing) throw new Error(missing);

const shots = join(import.meta.dirname, '../../.tap/screenshots');
mkdirSync(shots, { recursive: true });
const origin = await startOrigin();
const lab = await startLabIdpFixture();
const tg = await startTestTollgate((dir) =>
  testConfig(dir, {
    locations: [{ name: 'lab', ips: ['127.0.0.0/28'], enforceAuthentication: true }],
    hosts: { 'www.origin-a.test': '127.0.0.1' },
    idps: [lab.config()],
  }),
);
// Every request Chromium makes goes to Tollgate's proxy except loopback (Chromium's own bypass rule),
// so the dashboard is reached directly and nothing else can leave the machine.
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, timeout: 15_000, proxy: { server: `http://127.0.0.1:${tg.proxyPort}`, bypass: '127.0.0.1' }, args: [...chromiumArgs] });
t.teardown(async () => {
  await browser.close();
  await tg.close();
  await lab.close();
  await origin.close();
});
const base = `http://127.0.0.1:${tg.controlPort}`;
const site = `http://www.origin-a.test:${origin.port}/hello`;

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(shots, `dashboard-${name}.png`), fullPage: true });
}

t.test('sign in, overview, revoke a session, stage and activate', async (t) => {
  const alice = new FlowClient(tg.proxyPort, '127.0.0.4');
  t.equal((await alice.signIn(site, 'alice@example.com', 'alice-pw')).reply.status, 200, 'alice signed in');
  for (let i = 0; i < 5; i++) await viaProxy(tg.proxyPort, site, { localAddress: '127.0.0.66' });

  const context = await browser.newContext();
  const p = await context.newPage();
  await p.goto(`${base}/`);
  t.equal(new URL(p.url()).pathname, '/signin', 'not signed in: to the sign-in page');
  await p.fill('input[name=token]', 'tga.nobody.' + 'x'.repeat(43));
  await p.click('button');
  t.match(await p.locator('body').innerText(), 'That is not a current admin token.');
  await p.fill('input[name=token]', tg.adminToken);
  await p.click('button');
  t.equal(new URL(p.url()).pathname, '/');
  const cookie = (await context.cookies()).find((c) => c.name === 'tollgate_admin');
  t.match(cookie, { httpOnly: true, sameSite: 'Strict' }, 'an HttpOnly, SameSite=Strict session cookie');
  const overview = await p.locator('body').innerText();
  t.match(overview, 'test-node');
  t.match(overview, /Requests on all nodes: \d+/);
  t.ok(Number(/Requests on all nodes: (\d+)/.exec(overview)![1]) >= 6, 'the traffic is counted');
  t.match(overview, /Active sessions: 1/);
  t.match(overview, /reachable, [\d.]+ ms/, 'store health and latency');
  const blocked = Number(/(\d+) blocked/.exec(overview)?.[1]);
  t.ok(blocked >= 5, `the last hour's blocked requests (${blocked}), from the same counters as /metrics`);
  t.match(overview, /Sign-ins by outcome\tCount\nok\t1/, "the last hour's sign-ins by outcome");
  await shot(p, 'overview');

  await p.goto(`${base}/users?q=alice`);
  t.match(await p.locator('body').innerText(), 'alice@example.com');
  await shot(p, 'users');
  await p.click('text=Revoke');
  t.equal(new URL(p.url()).pathname, '/users');
  t.match(await p.locator('body').innerText(), 'no session', 'the session is gone from the list');
  t.equal((await alice.request(site)).status, 307, 'and the browser must sign in again');

  await p.goto(`${base}/config`);
  const text = await p.inputValue('textarea[name=text]');
  await p.fill('textarea[name=text]', `${text.trimEnd().replace(/\}$/, '')}, "unknownSources": "authenticate" }\n`);
  await p.click('text=Save draft');
  t.match(await p.locator('pre').innerText(), /^\+.*"unknownSources": "authenticate"/m, 'the diff shows the change');
  await shot(p, 'config-draft');
  await p.click('button:text-is("Activate")');
  t.match(new URL(p.url()).search, /activated=2/, await p.locator('body').innerText());
  t.equal(tg.tg.runtime.current.config.unknownSources, 'authenticate', 'the change is live');

  // A refused activation shows every error in the page and changes nothing.
  await p.fill('textarea[name=text]', '{ "locations": [{ "name": "x", "ips": ["nope"] }], "wat": 1 }');
  await p.click('text=Save draft');
  await p.click('button:text-is("Activate")');
  const refused = await p.locator('.err').innerText();
  t.match(refused, 'locations[0].ips[0]');
  t.match(refused, 'wat: unknown key');
  t.equal(tg.tg.runtime.current.version, 2, 'still v2');
  await shot(p, 'config-refused');

  const audit = tg.app.lines.filter((l) => l.msg === 'admin audit' && (l.detail as { via?: string } | undefined)?.via === 'dashboard').map((l) => `${l.action} ${l.outcome}`);
  t.same(audit, ['sessions.revoke ok', 'config.stage ok', 'config.activate ok', 'config.stage ok', 'config.activate ok'], 'each form is audited (a refused activation is an answered form)');
  await context.close();
});

t.test('forms need the session, its CSRF token and this origin', async (t) => {
  const r = await fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ token: tg.adminToken }), redirect: 'manual' });
  t.equal(r.status, 303);
  const sid = /tollgate_admin=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
  const post = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', body: new URLSearchParams(body), headers: { cookie: `tollgate_admin=${sid}`, accept: 'application/json', ...headers }, redirect: 'manual' });
  t.equal((await post('/config/activate', {})).status, 403, 'no CSRF token');
  t.equal((await post('/config/activate', { csrf: 'guess' })).status, 403, 'a wrong CSRF token');
  const page = await (await fetch(`${base}/config`, { headers: { cookie: `tollgate_admin=${sid}` } })).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
  t.equal((await post('/config/draft', { csrf, text: '{}' }, { origin: 'http://evil.test' })).status, 403, 'another origin');
  t.equal((await post('/config/draft', { csrf, text: '{}' }, { 'sec-fetch-site': 'same-site' })).status, 403, 'a same-site page');
  t.equal((await fetch(`${base}/config/draft`, { method: 'POST', body: new URLSearchParams({ csrf, text: '{}' }), redirect: 'manual' })).status, 401, 'no session');
  t.equal((await controlCall(tg.controlPort, 'GET', '/', { host: 'rebind.evil.test' })).status, 403, 'a rebound host name');
  t.equal((await post('/signout', { csrf })).status, 303);
  t.equal((await fetch(`${base}/`, { headers: { cookie: `tollgate_admin=${sid}` }, redirect: 'manual' })).headers.get('location'), '/signin', 'signed out');
  const via = await viaProxy(tg.proxyPort, `${base}/signin`, { localAddress: '127.0.0.4' });
  t.not(via.status, 200, 'not reachable through the proxy');
});
