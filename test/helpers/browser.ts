/**
 * browser: a real headless Chromium (Debian's `chromium` package, driven by playwright-core) whose
 * every request goes through a Tollgate under test.
 *
 *   Chromium -> Tollgate proxy listener (127.0.0.1:port) -> origin, or Tollgate's own hosts
 *
 * Chromium must reach nothing but loopback. Test origins have made-up names
 * (`www.origin-a.test`) that only Tollgate's static `hosts` map resolves, so Chromium never looks
 * a name up itself, and the flags below turn off every background request it was seen to make.
 * The proof is in the tests: with these flags Tollgate's access log holds only the test's own
 * requests (test/integration/browser-smoke.test.ts asserts exactly that).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** CHROMIUM is Debian's launcher for its `chromium` package; npm test installs it when missing. */
export const CHROMIUM = '/usr/bin/chromium';

/** chromiumMissing says why browser tests cannot run (they then fail), or false when Chromium is installed. */
export function chromiumMissing(): string | false {
  return existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed: npm test installs it (test/setup/system-deps.sh), or run apt-get install chromium`;
}

/**
 * UNSAFE_LOOPBACK is where background services are pointed. Port 9 (discard) is on Chromium's
 * restricted-port list, so a request there fails inside Chromium with ERR_UNSAFE_PORT before any
 * socket is opened: it reaches neither the network nor the proxy.
 */
const UNSAFE_LOOPBACK = 'http://127.0.0.1:9/';

/**
 * DISABLED_FEATURES is the whole `--disable-features` list. Chromium keeps only the last
 * `--disable-features` switch, so this list replaces playwright-core's own and repeats the entries
 * of it that we rely on.
 */
const DISABLED_FEATURES = [
  // HTTPS-Upgrades try https:// first for http:// navigations to real-looking names (seen: a CONNECT
  // to :443, then ERR_BLOCKED_BY_CLIENT and an aborted next navigation); our pages are plain http.
  'HttpsUpgrades',
  'HttpsFirstBalancedModeAutoEnable',
  'HttpsFirstModeV2ForTypicallySecureUsers',
  // Background requests at startup: clients2.google.com/time, optimization hints, search preconnects.
  'NetworkTimeServiceQuerying',
  'OptimizationHints',
  'AimEnabled',
  'PreconnectToSearch',
  'MediaRouter',
  'LensOverlay',
  // Filling a form field asks the Autofill server about the form (seen: CONNECT
  // content-autofill.googleapis.com:443 on the sign-in pages of browser-login.test.ts).
  'AutofillServerCommunication',
  // Kept from playwright-core's list so its page and navigation handling work as it expects.
  'AvoidUnnecessaryBeforeUnloadCheckSync',
  'DestroyProfileOnBrowserClose',
  'PaintHolding',
  'ThirdPartyStoragePartitioning',
  'AvoidCorsURLLoaderRestartOnRedirect',
];

/** chromiumArgs are the launch flags on top of playwright-core's defaults; each says why. */
export const chromiumArgs: readonly string[] = [
  // Tests run as root in a container, where Chromium's sandbox cannot start.
  '--no-sandbox',
  // Any name Chromium would resolve itself fails, so nothing that skipped the proxy could find an
  // address. The proxy is an IP literal; names in proxied URLs are resolved by Tollgate.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-default-apps',
  '--disable-sync',
  '--disable-extensions',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-domain-reliability',
  '--disable-breakpad',
  '--no-pings',
  '--metrics-recording-only',
  // --disable-component-update does not stop the on-demand check for the Optimization Guide
  // models manifest (POST update.googleapis.com/service/update2/json); moving the updater's
  // source does.
  `--component-updater=url-source=${UNSAFE_LOOPBACK}`,
  // Even signed out, Chromium POSTs accounts.google.com/ListAccounts at startup.
  `--gaia-url=${UNSAFE_LOOPBACK}`,
  `--disable-features=${DISABLED_FEATURES.join(',')}`,
];

/** BrowserOptions says which proxy Chromium uses. */
export interface BrowserOptions {
  readonly proxyPort: number;
  readonly proxyHost?: string;
  /** Timeout for launching and for each page action or navigation. */
  readonly timeoutMs?: number;
  /**
   * A CA (PEM) this browser trusts for TLS, as a user who installed Tollgate's certificate: it goes
   * into the NSS database of a throwaway home directory that only this Chromium process uses.
   */
  readonly trustCaPem?: string;
}

/**
 * profileTrusting makes a home directory whose NSS database (`~/.pki/nssdb`, where Chromium on Linux
 * reads certificates a user installed) trusts `caPem` for TLS servers. certutil is Debian's
 * libnss3-tools; npm test installs it.
 */
function profileTrusting(caPem: string): string {
  const home = mkdtempSync(join(tmpdir(), 'tollgate-chromium-home-'));
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  const pem = join(home, 'ca.pem');
  writeFileSync(pem, caPem);
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'Tollgate test CA', '-t', 'C,,', '-i', pem]);
  return home;
}

/** TestBrowser is a running Chromium; close it in teardown. */
export interface TestBrowser {
  readonly browser: Browser;
  /**
   * newPage opens a page in a fresh context: no cookies or cache shared with other pages. With
   * `proxyPort`, that context uses another proxy (a second Tollgate) instead of the launch one, so
   * one Chromium process serves tests of several Tollgates.
   */
  newPage(proxyPort?: number): Promise<Page>;
  close(): Promise<void>;
}

/**
 * launchBrowser starts headless Chromium with every request sent to the proxy, loopback included.
 * Chromium bypasses proxies for localhost and loopback addresses by default; `<-loopback>` in the
 * bypass list removes that implicit rule (without it, 127.0.0.1 and localhost went direct).
 */
export async function launchBrowser(opts: BrowserOptions): Promise<TestBrowser> {
  const timeout = opts.timeoutMs ?? 15_000;
  const home = opts.trustCaPem === undefined ? null : profileTrusting(opts.trustCaPem);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    timeout,
    proxy: { server: `http://${opts.proxyHost ?? '127.0.0.1'}:${opts.proxyPort}`, bypass: '<-loopback>' },
    args: [...chromiumArgs],
    ...(home === null ? {} : { env: { ...process.env, HOME: home } }),
  });
  return {
    browser,
    async newPage(proxyPort?: number) {
      const context: BrowserContext = await browser.newContext(
        proxyPort === undefined ? {} : { proxy: { server: `http://${opts.proxyHost ?? '127.0.0.1'}:${proxyPort}`, bypass: '<-loopback>' } },
      );
      context.setDefaultTimeout(timeout);
      context.setDefaultNavigationTimeout(timeout);
      const page = await context.newPage();
      page.once('close', () => {
        // The context is closed with the browser anyway; an error here only means it already was.
        context.close().catch(() => {});
      });
      return page;
    },
    async close() {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Chromium did not close within ${timeout} ms`)), timeout);
      });
      try {
        await Promise.race([browser.close(), late]);
      } finally {
        clearTimeout(timer);
        if (home !== null) rmSync(home, { recursive: true, force: true });
      }
    },
  };
}

/** PageView is what a person would see: where the page ended up and its visible text. */
export interface PageView {
  /** The final URL, after redirects. */
  readonly url: string;
  /** The body's rendered text (`innerText`), as a person reads it. */
  readonly text: string;
}

/** viewPage captures the page's current URL and text. */
export async function viewPage(page: Page): Promise<PageView> {
  return { url: page.url(), text: await page.locator('body').innerText() };
}

/** visit navigates, waits for the load event, and returns the main response's status and the view. */
export async function visit(page: Page, url: string): Promise<PageView & { readonly status: number | null }> {
  const res = await page.goto(url, { waitUntil: 'load' });
  return { status: res?.status() ?? null, ...(await viewPage(page)) };
}
