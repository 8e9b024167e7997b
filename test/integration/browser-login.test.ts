/**
 * browser-login: the SAML sign-in flow in real headless Chromium, behind a real Tollgate, against
 * real lab IdPs that sign real responses.
 *
 *   Chromium -> Tollgate -> www.origin-a.test --307--> gateway.tollgate.test/login
 *            --302--> idp.lab-idp.test/sso (form) --POST--> /login (auto-post form)
 *            --POST--> login.tollgate.test/sfc_sso --303--> gateway.tollgate.test/complete
 *            --307--> www.origin-a.test/...?_tollgate_token --307--> www.origin-a.test/... (cookie)
 *
 * The IdPs are on their own sites (idp.lab-idp.test, idp.partner-idp.test; only Tollgate's `hosts`
 * map resolves them), so the ACS POST is cross-site and SameSite rules apply as in the field. The
 * location enforces authentication with no IP surrogate, so every identification here comes from a
 * cookie Chromium chose to send. Skipped only when Debian's Chromium is not installed.
 */
import t from 'tap';
import type { Page } from 'playwright-core';
import { chromiumMissing, launchBrowser, viewPage, visit } from '../helpers/browser.js';
import { LAB_USERS, startLabIdpFixture } from '../helpers/flow.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';
import { COOKIE_NAME, TOKEN_PARAM } from '../../src/auth/identify.js';
import { LAB_IDP_BANNER } from '../../src/labidp/idp.js';
import type { ConfigInput } from '../../src/config/schema.js';

const CLOUD = 'tollgate.test';
const GATEWAY = `gateway.${CLOUD}`;
const STATUS = `http://ip.${CLOUD}/`;
const ORIGIN_A = 'www.origin-a.test';
const ORIGIN_B = 'www.origin-b.test';
const LAB_IDP = 'idp.lab-idp.test';
const PARTNER_IDP = 'idp.partner-idp.test';
const SUBTEST = { timeout: 60_000 };
const missing = chromiumMissing();

/** Navigations records every main-frame navigation request, redirect hops included, as "METHOD url". */
class Navigations {
  readonly all: string[] = [];
  constructor(page: Page) {
    page.on('request', (r) => {
      if (r.isNavigationRequest() && r.frame() === page.mainFrame()) this.all.push(`${r.method()} ${r.url()}`);
    });
  }
  /** mark returns a function giving the navigations since the mark. */
  mark(): () => string[] {
    const from = this.all.length;
    return () => this.all.slice(from);
  }
}

/** hostsOf lists each navigation as "METHOD host/path", dropping queries (ids and tokens vary). */
function hostsOf(navs: string[]): string[] {
  return navs.map((n) => {
    const [method, url] = n.split(' ') as [string, string];
    const u = new URL(url);
    return `${method} ${u.host}${u.pathname}${u.searchParams.has(TOKEN_PARAM) ? ` +${TOKEN_PARAM}` : ''}`;
  });
}

/** brief is a URL without its query, for assertion messages. */
function brief(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** signInAtIdp fills the lab IdP's form and waits for the browser to land on `landing`. */
async function signInAtIdp(page: Page, loginName: string, landing: string | RegExp | ((url: URL) => boolean)): Promise<void> {
  const user = LAB_USERS.find((u) => u.loginName === loginName)!;
  await page.locator('input[name="username"]').fill(user.loginName);
  await page.locator('input[name="password"]').fill(user.password);
  await Promise.all([page.waitForURL(landing, { waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()]);
}

/** statusRows reads the status page's table as the person sees it: heading → value. */
async function statusRows(page: Page): Promise<Record<string, string>> {
  const rows: Record<string, string> = {};
  for (const tr of await page.locator('tr').all()) rows[(await tr.locator('th').innerText()).trim()] = (await tr.locator('td').innerText()).trim();
  return rows;
}

/** upstreamLeaks lists what of ours reached the origin: our cookie or our token. */
function upstreamLeaks(origin: Origin): string[] {
  return origin.seen.filter((s) => String(s.headers.cookie ?? '').includes(`${COOKIE_NAME}=`) || s.url.includes(TOKEN_PARAM)).map((s) => `${s.url} cookie=${s.headers.cookie ?? ''}`);
}

/** startTollgate starts a Tollgate enforcing sign-in for 127.0.0.0/26 by cookie alone (no surrogate). */
function startTollgate(hosts: Record<string, string>, idps: NonNullable<ConfigInput['idps']>): Promise<TestTollgate> {
  return startTestTollgate((dir) =>
    testConfig(dir, {
      locations: [{ name: 'lab', ips: ['127.0.0.0/26', '::1'], enforceAuthentication: true }],
      hosts,
      idps,
    }),
  );
}

if (missing) {
  // npm test installs Chromium first (test/setup/system-deps.sh); a browser test is never skipped.
  t.fail(missing);
} else {
  // Last started, first closed: the browser, then the Tollgates, then the IdPs and the origin.
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    const errors: unknown[] = [];
    for (let close = closers.pop(); close !== undefined; close = closers.pop()) await close().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  };
  t.teardown(closeAll);
  /** keep registers what was started for teardown; when a start fails, what was started is closed now. */
  const keep = async <T>(starting: Promise<T>, close: (v: T) => Promise<void>): Promise<T> => {
    try {
      const v = await starting;
      closers.push(() => close(v));
      return v;
    } catch (err) {
      await closeAll();
      throw err;
    }
  };
  const origin = await keep(startOrigin(), (o) => o.close());
  const lab = await keep(startLabIdpFixture({ id: 'lab' }), (f) => f.close());
  const partner = await keep(startLabIdpFixture({ id: 'partner', users: LAB_USERS.filter((u) => u.loginName.endsWith('@partner.test')) }), (f) => f.close());
  const labPort = new URL(lab.idp.ssoUrl).port;
  const partnerPort = new URL(partner.idp.ssoUrl).port;
  const labSso = `http://${LAB_IDP}:${labPort}/sso`;
  const partnerSso = `http://${PARTNER_IDP}:${partnerPort}/sso`;

  // One IdP: the gateway sends every sign-in straight to it.
  const tg = await keep(startTollgate({ [LAB_IDP]: '127.0.0.1', [ORIGIN_A]: '127.0.0.1', [ORIGIN_B]: '127.0.0.1' }, [lab.config({ ssoUrl: labSso })]), (x) => x.close());
  // Two IdPs chosen by the login name's domain: the gateway asks for the name first.
  const tg2 = await keep(
    startTollgate({ [LAB_IDP]: '127.0.0.1', [PARTNER_IDP]: '127.0.0.1', [ORIGIN_A]: '127.0.0.1' }, [
      lab.config({ ssoUrl: labSso, domains: ['example.com'] }),
      partner.config({ ssoUrl: partnerSso, default: false, domains: ['partner.test'] }),
    ]),
    (x) => x.close(),
  );
  // One Chromium for both: its default proxy is tg; pages for tg2 get a context with tg2 as proxy.
  const browser = await keep(launchBrowser({ proxyPort: tg.proxyPort, timeoutMs: 15_000 }), (b) => b.close());

  const siteA = `http://${ORIGIN_A}:${origin.port}/hello`;
  const siteB = `http://${ORIGIN_B}:${origin.port}/hello`;

  // Subtests 1-4 are one person's browser: sign in, look at the status page, a second site, logout.
  const alice = await browser.newPage();
  const aliceNav = new Navigations(alice);

  t.test('an unidentified page load goes through the gateway to the IdP and, once signed in, back to the page', SUBTEST, async (t) => {
    const since = aliceNav.mark();
    const atIdp = await visit(alice, siteA);
    t.equal(atIdp.status, 200);
    t.ok(atIdp.url.startsWith(`${labSso}?`), `the browser is on the IdP's own site (${brief(atIdp.url)})`);
    t.match(atIdp.text, LAB_IDP_BANNER, "the lab IdP's sign-in page");
    t.same(hostsOf(since()), [`GET ${ORIGIN_A}:${origin.port}/hello`, `GET ${GATEWAY}/login`, `GET ${LAB_IDP}:${labPort}/sso`], 'page -> gateway -> IdP');
    const gatewayHop = since().find((n) => n.includes(`//${GATEWAY}/login`))!;
    t.match(gatewayHop, /\/login\?r=[A-Za-z0-9_-]{40,}$/, 'the gateway link carries only an opaque id');

    const signIn = aliceNav.mark();
    await signInAtIdp(alice, 'alice@example.com', siteA);
    const view = await viewPage(alice);
    t.equal(view.url, siteA, 'back at the original URL, token removed');
    t.equal(view.text.trim(), 'hello world', "the origin's page");
    t.same(
      hostsOf(signIn()),
      [
        `POST ${LAB_IDP}:${labPort}/login`,
        `POST login.${CLOUD}/sfc_sso`,
        `GET ${GATEWAY}/complete`,
        `GET ${ORIGIN_A}:${origin.port}/hello +${TOKEN_PARAM}`,
        `GET ${ORIGIN_A}:${origin.port}/hello`,
      ],
      'IdP form -> auto-posted response to the ACS -> gateway cookie -> token swap -> page',
    );

    const entry = await tg.waitForEntry((e) => e.url === siteA && e.status === 200);
    t.match(entry, { login: 'alice@example.com', department: 'Engineering', action: 'allowed', method: 'GET' }, 'the access log attributes the page to alice');
    const early = tg.entries().find((e) => e.url === siteA && e.action === 'auth-redirect');
    t.match(early, { status: 307, login: '' }, 'the first, unidentified load was logged as a sign-in redirect');

    const cookies = (await alice.context().cookies()).filter((c) => c.name === COOKIE_NAME);
    t.same(cookies.map((c) => c.domain).sort(), [GATEWAY, ORIGIN_A], 'our cookie is on the gateway and the site, nowhere else');
    for (const c of cookies) t.match(c, { path: '/', httpOnly: true, sameSite: 'Lax' }, `${c.domain}: host-only, HttpOnly, SameSite=Lax`);
    t.same(upstreamLeaks(origin), [], 'the origin never saw our cookie or our token');
  });

  t.test('the status page shows the signed-in user, identified by cookie', SUBTEST, async (t) => {
    const view = await visit(alice, STATUS);
    t.equal(view.status, 200);
    t.equal(new URL(view.url).host, `ip.${CLOUD}`);
    t.notOk(view.url.includes(TOKEN_PARAM), 'no token left in the address bar');
    const rows = await statusRows(alice);
    t.match(rows, {
      User: 'alice@example.com',
      Name: 'Alice Example',
      Department: 'Engineering',
      Groups: 'Engineering, VPN Users',
      'Identity provider': 'Lab IdP lab',
      'Identified by': 'cookie',
      Authentication: 'authenticated',
    });
    t.ok(await alice.getByRole('button', { name: 'Logout' }).isVisible(), 'with a Logout button');
  });

  t.test('a second site loads without another IdP sign-in', SUBTEST, async (t) => {
    const since = aliceNav.mark();
    const idpLines = tg.entries().filter((e) => e.host === LAB_IDP).length;
    const view = await visit(alice, siteB);
    t.equal(view.status, 200);
    t.equal(view.url, siteB);
    t.equal(view.text.trim(), 'hello world');
    t.same(
      hostsOf(since()),
      [`GET ${ORIGIN_B}:${origin.port}/hello`, `GET ${GATEWAY}/login`, `GET ${ORIGIN_B}:${origin.port}/hello +${TOKEN_PARAM}`, `GET ${ORIGIN_B}:${origin.port}/hello`],
      'the gateway recognised its cookie and sent the browser straight back',
    );
    t.equal(tg.entries().filter((e) => e.host === LAB_IDP).length, idpLines, 'no request reached the IdP');
    const entry = await tg.waitForEntry((e) => e.url === siteB && e.status === 200);
    t.equal(entry.login, 'alice@example.com');
    t.same(upstreamLeaks(origin), []);
  });

  t.test('Logout on the status page ends the session: the next page load goes to the IdP again', SUBTEST, async (t) => {
    await visit(alice, STATUS);
    t.equal((await statusRows(alice))['User'], 'alice@example.com');
    await Promise.all([alice.waitForURL(`${STATUS}?probed=1`, { waitUntil: 'load' }), alice.getByRole('button', { name: 'Logout' }).click()]);
    const rows = await statusRows(alice);
    t.equal(rows['Authentication'], 'not authenticated (required here)', 'the status page no longer knows the user');
    t.equal(rows['User'], undefined);
    t.notOk(await alice.getByRole('button', { name: 'Logout' }).count(), 'and offers no Logout');
    const out = await tg.waitForEntry((e) => e.method === 'POST' && e.url === `${STATUS}logout`);
    t.match(out, { status: 303, login: 'alice@example.com', action: 'own-host' }, 'the logout POST was accepted (CSRF token and Origin)');

    for (const site of [siteA, siteB]) {
      const view = await visit(alice, site);
      t.ok(view.url.startsWith(`${labSso}?`), `${new URL(site).host} now goes to the IdP (${brief(view.url)})`);
    }
  });

  t.test('clstart signs in at the domain\'s IdP and lands on redrurl; an off-site redrurl goes nowhere', SUBTEST, async (t) => {
    const page = await browser.newPage();
    const nav = new Navigations(page);
    const clstart = (redrurl: string) => `http://login.${CLOUD}/clstart?version=1&_domain=example.com&redrurl=${encodeURIComponent(redrurl)}`;

    const atIdp = await visit(page, clstart(STATUS));
    t.ok(atIdp.url.startsWith(`${labSso}?`), `clstart went to the IdP (${brief(atIdp.url)})`);
    await signInAtIdp(page, 'bob@example.com', (u) => u.host === `ip.${CLOUD}` && !u.searchParams.has(TOKEN_PARAM));
    t.equal(page.url(), STATUS, 'landed on redrurl');
    t.match(await statusRows(page), { User: 'bob@example.com', Name: 'Bob Example', Groups: 'Sales', 'Identified by': 'cookie' });

    const since = nav.mark();
    const evil = await visit(page, clstart('http://evil.test/'));
    t.equal(evil.status, 400);
    t.equal(new URL(evil.url).host, `login.${CLOUD}`, 'the browser stayed on the login host');
    t.match(evil.text, 'redrurl must be a page on this service');
    t.notOk(since().some((n) => n.includes('evil.test/')), 'no navigation to the off-site URL');
    t.notOk(tg.entries().some((e) => e.host === 'evil.test'), 'nor any request');
    await page.close();
  });

  t.test('with two IdPs the gateway asks for the login name and its domain picks the IdP', SUBTEST, async (t) => {
    /** nameAtGateway opens the site in a fresh browser, types the login name, and waits to be at `sso`. */
    const nameAtGateway = async (loginName: string, sso: string): Promise<Page> => {
      const page = await browser.newPage(tg2.proxyPort);
      const form = await visit(page, siteA);
      t.equal(new URL(form.url).host, GATEWAY, `${loginName}: the gateway's own page asks for the name`);
      t.match(form.text, 'Sign in to continue');
      await page.getByLabel('Login name').fill(loginName);
      await Promise.all([page.waitForURL((u) => u.href.startsWith(`${sso}?`), { waitUntil: 'load' }), page.getByRole('button', { name: 'Continue' }).click()]);
      t.match(await page.locator('body').innerText(), LAB_IDP_BANNER, `${loginName}: on ${new URL(sso).host}'s sign-in page`);
      return page;
    };

    const carol = await nameAtGateway('carol@partner.test', partnerSso);
    await signInAtIdp(carol, 'carol@partner.test', siteA);
    t.equal((await viewPage(carol)).text.trim(), 'hello world', 'carol signed in at the partner IdP and is on the page');
    const entry = await tg2.waitForEntry((e) => e.url === siteA && e.status === 200);
    t.match(entry, { login: 'carol@partner.test', department: 'Partners', action: 'allowed' });
    await visit(carol, STATUS);
    t.match(await statusRows(carol), { User: 'carol@partner.test', 'Identity provider': 'Lab IdP partner', 'Identified by': 'cookie' });
    await carol.close();

    const alice = await nameAtGateway('alice@example.com', labSso);
    await alice.close();
    t.same(upstreamLeaks(origin), []);
  });

  t.test('Chromium sent nothing but the pages of the flow', async (t) => {
    // Background requests (autofill, updater, sign-in, hints) would go through the proxy and be logged.
    const hosts = (tt: TestTollgate) => [...new Set(tt.entries().map((e) => e.host))].sort();
    const own = [`gateway.${CLOUD}`, `ip.${CLOUD}`, `login.${CLOUD}`];
    t.same(hosts(tg), [...own, LAB_IDP, ORIGIN_A, ORIGIN_B].sort(), 'one IdP');
    t.same(hosts(tg2), [...own, PARTNER_IDP, LAB_IDP, ORIGIN_A].sort(), 'two IdPs');
  });
}
