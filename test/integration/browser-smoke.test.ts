/**
 * browser-smoke: real headless Chromium browsing through a real Tollgate.
 *
 *   Chromium -> Tollgate (127.0.0.1:0) -> origin (127.0.0.1:0, named www.origin-a.test by `hosts`)
 *                                      -> ip.tollgate.test (Tollgate's own status page)
 *
 * The location `lab` covers 127.0.0.0/26 and does not enforce authentication, so requests are
 * simply proxied. Skipped only when Debian's Chromium is not installed; .ci/run installs it.
 */
import t from 'tap';
import { chromiumMissing, launchBrowser, visit } from '../helpers/browser.js';
import { startOrigin } from '../helpers/origin.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

const ORIGIN_HOST = 'www.origin-a.test';
const missing = chromiumMissing();

if (missing) {
  // npm test installs Chromium first (test/setup/system-deps.sh); a browser test is never skipped.
  t.fail(missing);
} else {
  const origin = await startOrigin();
  const tg = await startTestTollgate((dir) => testConfig(dir, { hosts: { [ORIGIN_HOST]: '127.0.0.1' } }));
  const browser = await launchBrowser({ proxyPort: tg.proxyPort, timeoutMs: 15_000 }).catch(async (err: unknown) => {
    await tg.close();
    await origin.close();
    throw err;
  });
  t.teardown(async () => {
    await browser.close();
    await tg.close();
    await origin.close();
  });

  t.test('a page on a hosts-mapped origin loads through the proxy and is logged as allowed', { timeout: 30_000 }, async (t) => {
    const url = `http://${ORIGIN_HOST}:${origin.port}/hello`;
    const page = await browser.newPage();
    const view = await visit(page, url);
    t.equal(view.status, 200);
    t.equal(view.url, url, 'no redirect and no https upgrade');
    t.equal(view.text.trim(), 'hello world');
    const seen = origin.seen.find((s) => s.url === '/hello');
    t.equal(seen?.headers.via, '1.1 tollgate-test-node', 'the origin was reached through Tollgate');
    const entry = await tg.waitForEntry((e) => e.url === url);
    t.match(entry, { action: 'allowed', status: 200, method: 'GET', protocol: 'HTTP', location: 'lab', clientIp: '127.0.0.1' });
    await page.close();
  });

  t.test("Tollgate's own status page is served through the proxy with the client's address", { timeout: 30_000 }, async (t) => {
    const url = 'http://ip.tollgate.test/';
    const page = await browser.newPage();
    const view = await visit(page, url);
    t.equal(view.status, 200);
    t.equal(view.url, url);
    t.match(view.text, 'You are accessing the web through Tollgate');
    const ip = await page.locator('tr', { hasText: 'Your IP address' }).locator('td').innerText();
    t.equal(ip, '127.0.0.1');
    const entry = await tg.waitForEntry((e) => e.url === url);
    t.match(entry, { action: 'own-host', status: 200, clientIp: ip });
    await page.close();
  });

  t.test('loopback addresses go through the proxy too, not around it', { timeout: 30_000 }, async (t) => {
    // Chromium bypasses proxies for loopback unless told `<-loopback>`; then the origin sees no Via.
    const page = await browser.newPage();
    for (const host of ['127.0.0.1', 'localhost']) {
      const url = `http://${host}:${origin.port}/hello`;
      const view = await visit(page, url);
      t.equal(view.text.trim(), 'hello world', host);
      const entry = await tg.waitForEntry((e) => e.url === url);
      t.equal(entry.action, 'allowed', `${host} is in the access log`);
    }
    t.ok(origin.seen.every((s) => s.headers.via === '1.1 tollgate-test-node'), 'every request the origin saw came through Tollgate');
    await page.close();
  });

  t.test('Chromium sends nothing but the pages the test asked for', async (t) => {
    // Background requests (updater, sign-in, time, hints) would go through the proxy and be logged.
    const hosts = [...new Set(tg.entries().map((e) => e.host))].sort();
    t.same(hosts, ['127.0.0.1', 'ip.tollgate.test', 'localhost', ORIGIN_HOST], `hosts in the access log: ${hosts.join(', ')}`);
  });
}
