/**
 * browser-pac: a real headless Chromium that knows nothing but Tollgate's PAC URL.
 *
 *   Chromium --proxy-pac-url=http://<control>/proxy.pac
 *     -> ip.tollgate.test, www.origin-a.test, the lab IdP  -> PROXY primary; PROXY secondary
 *     -> direct.bypass.test (bypass list)                   -> DIRECT to the origin
 *
 * Two Tollgate nodes share one config: "primary" and "secondary", in that order in the PAC's
 * gateway list. Chromium gets no proxy flag; only the usual headless flags of the browser helper,
 * with its resolver rules extended to map the bypass host to loopback (every other name still
 * fails to resolve in Chromium, so nothing it sends DIRECT by mistake could reach anything).
 * Skipped only when Debian's Chromium is not installed.
 */
import t from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, chromiumArgs, chromiumMissing, viewPage, visit } from '../helpers/browser.js';
import { LAB_USERS, startLabIdpFixture } from '../helpers/flow.js';
import { startOrigin } from '../helpers/origin.js';
import { freePort } from '../helpers/redis.js';
import { startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';
import type { ConfigInput } from '../../src/config/schema.js';

const CLOUD = 'tollgate.test';
const STATUS = `http://ip.${CLOUD}/`;
const ORIGIN_A = 'www.origin-a.test';
const LAB_IDP = 'idp.lab-idp.test';
const BYPASS = 'direct.bypass.test';
const SUBTEST = { timeout: 60_000 };
const missing = chromiumMissing();

if (missing) {
  t.plan(0, missing);
} else {
  const closers: (() => Promise<void>)[] = [];
  t.teardown(async () => {
    for (let close = closers.pop(); close !== undefined; close = closers.pop()) await close().catch(() => {});
  });
  const keep = <T>(v: T, close: (v: T) => Promise<void>): T => {
    closers.push(() => close(v));
    return v;
  };

  const origin = keep(await startOrigin(), (o) => o.close());
  const lab = keep(await startLabIdpFixture({ id: 'lab' }), (f) => f.close());
  const labSso = `http://${LAB_IDP}:${new URL(lab.idp.ssoUrl).port}/sso`;
  const [primaryPort, secondaryPort] = [await freePort(), await freePort()];
  const node = (name: string, port: number) =>
    startTestTollgate((dir) => {
      const c: ConfigInput = testConfig(dir, {
        nodeName: name,
        listeners: { proxy: `127.0.0.1:${port}`, control: '127.0.0.1:0' },
        locations: [{ name: 'lab', ips: ['127.0.0.0/26', '::1'], enforceAuthentication: true }],
        hosts: { [LAB_IDP]: '127.0.0.1', [ORIGIN_A]: '127.0.0.1' },
        idps: [lab.config({ ssoUrl: labSso })],
        pac: { gateways: [`127.0.0.1:${primaryPort}`, `127.0.0.1:${secondaryPort}`], bypass: [BYPASS] },
      });
      return c;
    });
  const primary: TestTollgate = await node('primary', primaryPort);
  let primaryUp = true;
  closers.push(async () => {
    if (primaryUp) await primary.close();
  });
  const secondary = keep(await node('secondary', secondaryPort), (x) => x.close());

  // The PAC comes from the secondary's control listener, which stays up when the primary goes down.
  const pacUrl = `http://127.0.0.1:${secondary.controlPort}/proxy.pac`;
  const args = [
    ...chromiumArgs.filter((a) => !a.startsWith('--host-resolver-rules=')),
    `--host-resolver-rules=MAP ${BYPASS} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
    `--proxy-pac-url=${pacUrl}`,
  ];
  const browser: Browser = keep(await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, timeout: 15_000, args }), (b) => b.close());
  const context = await browser.newContext();
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(15_000);
  const page: Page = await context.newPage();

  t.test('Chromium fetched the PAC from the control listener', SUBTEST, async (t) => {
    // The PAC fetch is no proxied request, so it never shows in the access log; the status page
    // below loading through the proxy is the proof that Chromium ran the PAC.
    const r = await fetch(pacUrl);
    t.equal(r.headers.get('content-type'), 'application/x-ns-proxy-autoconfig');
    t.match(await r.text(), `var proxies = "PROXY 127.0.0.1:${primaryPort}; PROXY 127.0.0.1:${secondaryPort}";`);
  });

  t.test('the status page loads through the primary and shows the client and the location', SUBTEST, async (t) => {
    const view = await visit(page, STATUS);
    t.equal(view.status, 200);
    t.equal(new URL(view.url).host, `ip.${CLOUD}`);
    t.match(view.text, '127.0.0.1', 'the client address');
    t.match(view.text, /\blab\b/, 'the location');
    t.match(view.text, 'primary', 'the node that answered');
    await primary.waitForEntry((e) => e.host === `ip.${CLOUD}` && e.status === 200);
    t.notOk(secondary.entries().some((e) => e.host === `ip.${CLOUD}`), 'the secondary saw none of it');
  });

  t.test('after signing in at the lab IdP, the status page shows the user', SUBTEST, async (t) => {
    const site = `http://${ORIGIN_A}:${origin.port}/hello`;
    const atIdp = await visit(page, site);
    t.ok(atIdp.url.startsWith(`${labSso}?`), `sent to the IdP through the proxy (${new URL(atIdp.url).host})`);
    const user = LAB_USERS.find((u) => u.loginName === 'alice@example.com')!;
    await page.locator('input[name="username"]').fill(user.loginName);
    await page.locator('input[name="password"]').fill(user.password);
    await Promise.all([page.waitForURL(site, { waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()]);
    t.equal((await viewPage(page)).text.trim(), 'hello world');
    const view = await visit(page, STATUS);
    t.match(view.text, 'alice@example.com');
    t.match(view.text, 'Alice Example');
    const e = await primary.waitForEntry((x) => x.url === site && x.status === 200);
    t.equal(e.login, 'alice@example.com', 'the access log attributes the page to alice');
  });

  t.test('a bypass host is fetched DIRECT: the origin serves it and no proxy logs it', SUBTEST, async (t) => {
    const seenBefore = origin.seen.length;
    const view = await visit(page, `http://${BYPASS}:${origin.port}/hello`);
    t.equal(view.status, 200);
    t.equal(view.text.trim(), 'hello world');
    const hit = origin.seen.slice(seenBefore).find((s) => s.url === '/hello');
    t.ok(hit, 'the origin saw the request');
    t.equal(hit?.headers.host, `${BYPASS}:${origin.port}`);
    t.equal(hit?.headers.via, undefined, 'no proxy added Via');
    // A proxied request would be logged before the origin's reply reached the browser.
    for (const tg of [primary, secondary]) t.same(tg.entries().filter((e) => e.host === BYPASS), [], `${tg.tg.runtime.current.nodeName}: no access-log line for ${BYPASS}`);
  });

  t.test('with the primary gateway down, the browser fails over to the secondary', SUBTEST, async (t) => {
    await primary.close();
    primaryUp = false;
    const view = await visit(page, `${STATUS}?after=failover`);
    t.equal(view.status, 200);
    t.match(view.text, 'secondary', 'the secondary node answered');
    t.match(view.text, '127.0.0.1');
    const e = await secondary.waitForEntry((x) => x.host === `ip.${CLOUD}` && x.status === 200);
    t.equal(e.node, 'secondary');
  });
}
