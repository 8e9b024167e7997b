/**
 * The status page in real headless Chromium, through a real Tollgate, before and after a lab-IdP
 * sign-in, on a desktop and on a phone-sized viewport. Screenshots go to .tap/screenshots/status/
 * (git-ignored; the path is printed) so a person can look at how the page reads.
 *
 *   Chromium -> Tollgate -> ip.tollgate.test (own host) --307--> gateway /probe --307--> ip.tollgate.test
 *   Chromium -> Tollgate -> www.origin-a.test --307--> gateway --302--> lab IdP --POST--> ACS --> site
 *
 * Without Debian's Chromium the test fails (npm test installs it first); it is never skipped.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { chromiumMissing, launchBrowser, visit, type TestBrowser } from '../helpers/browser.js';
import { LAB_USERS, startLabIdpFixture, type LabIdpFixture } from '../helpers/flow.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { controlCall, startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';
import { renderStatusHtml } from '../../src/status/page.js';
import type { StatusView } from '../../src/status/view.js';

const CLOUD = 'tollgate.test';
const STATUS = `http://ip.${CLOUD}/`;
const SHOTS = resolve('.tap/screenshots/status');
const PHONE = { width: 390, height: 844 };
const SUBTEST = { timeout: 60_000 };
const missing = chromiumMissing();

/** rows reads the details table as a person sees it: heading → value. */
async function rows(page: Page): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const tr of await page.locator('tr').all()) out[(await tr.locator('th').innerText()).trim()] = (await tr.locator('td').innerText()).trim();
  return out;
}

/** shoot saves a full-page screenshot at desktop and phone widths, and checks the phone needs no sideways scrolling. */
async function shoot(t: Test, page: Page, name: string): Promise<void> {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  t.ok(overflow <= 0, `${name}: on a ${PHONE.width}px phone nothing sticks out sideways (overflow ${overflow}px)`);
  t.comment(`screenshots: ${join(SHOTS, `${name}-{desktop,phone}.png`)}`);
}

if (missing) {
  t.fail(missing);
} else {
  mkdirSync(SHOTS, { recursive: true });
  let origin: Origin | undefined;
  let lab: LabIdpFixture | undefined;
  let tg: TestTollgate | undefined;
  let browser: TestBrowser | undefined;
  t.teardown(async () => {
    await browser?.close();
    await tg?.close();
    await lab?.close();
    await origin?.close();
  });
  origin = await startOrigin();
  lab = await startLabIdpFixture();
  tg = await startTestTollgate((dir) =>
    testConfig(dir, {
      locations: [{ name: 'lab', ips: ['127.0.0.0/26', '::1'], enforceAuthentication: true, sublocations: [{ name: 'desk', ips: ['127.0.0.1/32'] }] }],
      hosts: { 'www.origin-a.test': '127.0.0.1' },
      idps: [lab.config()],
    }),
  );
  browser = await launchBrowser({ proxyPort: tg.proxyPort });
  const page = await browser.newPage();
  const site = `http://www.origin-a.test:${origin.port}/hello`;

  t.test('before sign-in: the page says the browser goes through Tollgate, from where, and that it is not signed in', SUBTEST, async (t) => {
    const view = await visit(page, STATUS);
    t.equal(view.status, 200);
    t.equal(view.url, `${STATUS}?probed=1`, 'the gateway was asked once whether this browser has a session');
    t.equal(await page.locator('h1').innerText(), 'You are accessing the web through Tollgate');
    t.match(view.text, 'Your request came through Tollgate node test-node in the cloud tollgate.test.');
    t.match(view.text, 'You are in the location lab, sublocation desk.');
    t.match(view.text, 'You are not signed in. Sign-in is required here');
    t.match(await rows(page), { 'Through Tollgate': 'Yes', 'Your IP address': '127.0.0.1', 'IP address from': 'your connection (peer address)', Location: 'lab', Sublocation: 'desk', Authentication: 'not authenticated (required here)', 'Identified by': 'not authenticated' });
    t.equal(await page.getByRole('button', { name: 'Logout' }).count(), 0, 'no Logout before sign-in');
    await shoot(t, page, 'anonymous');
  });

  t.test('after a lab-IdP sign-in: the page shows the user, how they were identified, and a Logout button', SUBTEST, async (t) => {
    const atIdp = await visit(page, site);
    t.ok(atIdp.url.startsWith(lab!.idp.ssoUrl), `the site sent the browser to the IdP (${new URL(atIdp.url).host})`);
    const alice = LAB_USERS.find((u) => u.loginName === 'alice@example.com')!;
    await page.locator('input[name="username"]').fill(alice.loginName);
    await page.locator('input[name="password"]').fill(alice.password);
    await Promise.all([page.waitForURL(site, { waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()]);

    const view = await visit(page, STATUS);
    t.equal(view.status, 200);
    t.match(view.text, 'You are signed in as alice@example.com (Alice Example) through Lab IdP lab. Tollgate recognised this request by its cookie on this site.');
    const r = await rows(page);
    t.match(r, { User: 'alice@example.com', Name: 'Alice Example', Department: 'Engineering', Groups: 'Engineering, VPN Users', 'Identity provider': 'Lab IdP lab', 'Identified by': 'cookie', Authentication: 'authenticated' });
    t.match(r['Signed in'], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)$/);
    t.match(r['Session expires'], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    t.ok(await page.getByRole('button', { name: 'Logout' }).isVisible(), 'with a Logout button');
    await shoot(t, page, 'signed-in');

    // The page may already be at ?probed=1 (the probe brought it there), so wait for the POST's answer and the page after it.
    const [out] = await Promise.all([page.waitForResponse((r) => r.url() === `${STATUS}logout`), page.getByRole('button', { name: 'Logout' }).click()]);
    t.equal(out.status(), 303, 'the Logout POST is accepted');
    await page.waitForURL(`${STATUS}?probed=1`, { waitUntil: 'load' });
    t.equal((await rows(page))['Authentication'], 'not authenticated (required here)', 'Logout works from the page (POST with its CSRF token, under the page\'s CSP)');
  });

  t.test('reached directly: the control listener\'s page, as Chromium renders it', SUBTEST, async (t) => {
    // Chromium here sends everything through the proxy, so the direct page is fetched over HTTP and rendered as is.
    const direct = await controlCall(tg.controlPort, 'GET', '/', { host: `ip.${CLOUD}`, accept: 'text/html' });
    const p = await browser!.newPage();
    await p.setContent(direct.body, { waitUntil: 'load' });
    t.equal(await p.locator('h1').innerText(), 'You are not going through Tollgate');
    t.ok(await p.getByRole('heading', { name: 'How to use Tollgate' }).isVisible());
    t.ok(await p.getByText(`http://127.0.0.1:${tg.proxyPort}/proxy.pac`).isVisible(), 'the PAC URL is on the page');
    await shoot(t, p, 'direct');
    await p.close();
  });

  t.test("Tollgate's certificate section, as Chromium renders it when a CA is configured", SUBTEST, async (t) => {
    // No CA is configured in this Tollgate; the section is rendered from the same view with one set.
    const view = JSON.parse((await controlCall(tg.controlPort, 'GET', '/?format=json', { host: `ip.${CLOUD}` })).body) as StatusView;
    const ca = { derUrl: `${STATUS}ca.crt`, pemUrl: `${STATUS}ca.pem`, subject: 'CN=Tollgate Lab CA, O=Example', sha256: Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':') };
    const p = await browser!.newPage();
    await p.setContent(renderStatusHtml({ ...view, caCertificate: ca }), { waitUntil: 'load' });
    t.ok(await p.getByRole('heading', { name: "Tollgate's certificate" }).isVisible());
    t.equal(await p.getByRole('link', { name: 'ca.crt' }).first().getAttribute('href'), ca.derUrl);
    t.equal(await p.getByRole('link', { name: 'ca.pem' }).first().getAttribute('href'), ca.pemUrl);
    await shoot(t, p, 'certificate');
    await p.close();
  });
}
