/**
 * browser-inspection: an https-first user signs in through TLS inspection in real headless Chromium.
 *
 *   Chromium (trusts Tollgate's CA in its own profile) --CONNECT--> Tollgate --inspects--> https origin
 *     https://www.secure-a.test/hello --307--> gateway.tollgate.test/login --302--> lab IdP (form)
 *     --POST--> login.tollgate.test/sfc_sso --303--> gateway/complete --307--> https://www.secure-a.test/hello?token
 *     --307 + our cookie, inside TLS--> https://www.secure-a.test/hello (identified by that cookie)
 *
 * The location enforces sign-in by cookie alone (no IP surrogate), so every identification of an
 * https page here comes from the cookie Tollgate planted inside TLS. Two Tollgates: one with the
 * gateway on plain http (as ZIA), one with `authentication.gatewayScheme: https`, where the gateway
 * and the ACS are served inside TLS too and no step of the sign-in is plain http but the IdP's own.
 */
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { chromiumMissing, launchBrowser, viewPage, visit } from '../helpers/browser.js';
import { LAB_USERS, startLabIdpFixture, type LabIdpFixture } from '../helpers/flow.js';
import { originCa, startHttpsOrigin, type HttpsOrigin } from '../helpers/inspect.js';
import { startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';
import { createCa, writeCa } from '../../src/tls/ca.js';
import { COOKIE_NAME, TOKEN_PARAM } from '../../src/auth/identify.js';

const CLOUD = 'tollgate.test';
const SITE = 'www.secure-a.test';
const LAB_IDP = 'idp.lab-idp.test';
const SUBTEST = { timeout: 90_000 };

/** hops lists main-frame navigations as "METHOD scheme://host/path", marking a token in the query. */
function hops(page: Page): () => string[] {
  const all: string[] = [];
  page.on('request', (r) => {
    if (!r.isNavigationRequest() || r.frame() !== page.mainFrame()) return;
    const u = new URL(r.url());
    all.push(`${r.method()} ${u.protocol}//${u.hostname}${u.pathname}${u.searchParams.has(TOKEN_PARAM) ? ` +${TOKEN_PARAM}` : ''}`);
  });
  return () => all.splice(0);
}

/** signIn fills the lab IdP's form and waits for the browser to land back on `landing`. */
async function signIn(page: Page, loginName: string, landing: string): Promise<void> {
  const user = LAB_USERS.find((u) => u.loginName === loginName)!;
  await page.locator('input[name="username"]').fill(user.loginName);
  await page.locator('input[name="password"]').fill(user.password);
  await Promise.all([page.waitForURL(landing, { waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()]);
}

/** leaks lists what of ours reached the origin: our cookie or our token. */
function leaks(origin: HttpsOrigin): string[] {
  return origin.seen.filter((s) => String(s.headers.cookie ?? '').includes(`${COOKIE_NAME}=`) || s.url.includes(TOKEN_PARAM)).map((s) => s.url);
}

const missing = chromiumMissing();
if (missing) {
  t.fail(missing);
} else {
  const dir = t.testdir();
  const ours = createCa({ keyType: 'p256', commonName: 'Tollgate browser-test CA' });
  await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, ours.certPem, ours.keyPem);
  const oca = await originCa('Secure origin CA');
  writeFileSync(join(dir, 'origin-ca.pem'), oca.certPem);
  const origin = await startHttpsOrigin(await oca.leaf(SITE), 'secure-a');
  t.teardown(() => origin.close());

  const start = async (fixture: LabIdpFixture, gatewayScheme: 'http' | 'https'): Promise<TestTollgate> => {
    const port = new URL(fixture.idp.ssoUrl).port;
    const tg = await startTestTollgate((dataDir) =>
      testConfig(dataDir, {
        locations: [{ name: 'lab', ips: ['127.0.0.0/26', '::1'], enforceAuthentication: true, surrogate: { enabled: false }, inspection: 'on' }],
        hosts: { [LAB_IDP]: '127.0.0.1', [SITE]: '127.0.0.1' },
        connectPorts: [origin.port],
        idps: [fixture.config({ ssoUrl: `http://${LAB_IDP}:${port}/sso` })],
        authentication: { gatewayScheme },
        inspection: {
          caCert: join(dir, 'ca.crt'),
          caKey: join(dir, 'ca.key'),
          hosts: [{ match: [SITE], upstreamCa: join(dir, 'origin-ca.pem') }],
        },
      }),
    );
    t.teardown(() => tg.close());
    return tg;
  };
  const plainIdp = await startLabIdpFixture({ id: 'lab' });
  t.teardown(() => plainIdp.close());
  const secureIdp = await startLabIdpFixture({ id: 'lab', acsScheme: 'https' });
  t.teardown(() => secureIdp.close());
  const tgHttp = await start(plainIdp, 'http');
  const tgHttps = await start(secureIdp, 'https');

  const browser = await launchBrowser({ proxyPort: tgHttp.proxyPort, timeoutMs: 20_000, trustCaPem: ours.certPem });
  t.teardown(() => browser.close());
  const page = `https://${SITE}:${origin.port}/hello`;

  for (const [tg, scheme, idp] of [
    [tgHttp, 'http', plainIdp],
    [tgHttps, 'https', secureIdp],
  ] as const) {
    t.test(`the first page of the day is https: sign-in from inside TLS, gateway on ${scheme}`, SUBTEST, async (t) => {
      const p = await browser.newPage(tg.proxyPort);
      t.teardown(() => p.close());
      const since = hops(p);
      const atIdp = await visit(p, page);
      t.equal(atIdp.status, 200);
      const idpPort = new URL(idp.idp.ssoUrl).port;
      t.ok(atIdp.url.startsWith(`http://${LAB_IDP}:${idpPort}/sso?`), `on the IdP's page (${new URL(atIdp.url).origin})`);
      t.same(since(), [`GET https://${SITE}/hello`, `GET ${scheme}://gateway.${CLOUD}/login`, `GET http://${LAB_IDP}/sso`], 'https page -> gateway -> IdP');
      const early = await tg.waitForEntry((e) => e.url === page && e.action === 'auth-redirect');
      t.match(early, { status: 307, decrypted: true, protocol: 'SSL', sni: SITE, login: '' }, 'the unidentified https load was sent to sign in from inside TLS');

      await signIn(p, 'alice@example.com', page);
      t.same(
        since(),
        [
          `POST http://${LAB_IDP}/login`,
          `POST ${scheme}://login.${CLOUD}/sfc_sso`,
          `GET ${scheme}://gateway.${CLOUD}/complete`,
          `GET https://${SITE}/hello +${TOKEN_PARAM}`,
          `GET https://${SITE}/hello`,
        ],
        'IdP -> ACS -> gateway -> token swapped inside TLS -> the page',
      );
      const view = await viewPage(p);
      t.equal(view.url, page, 'back at the https page, token removed');
      const body = JSON.parse(view.text) as { label: string; cookie: string | null };
      t.equal(body.label, 'secure-a', "the origin's page, over verified TLS");
      t.equal(body.cookie, null, 'the origin got no cookie of ours');

      const cookies = (await p.context().cookies()).filter((c) => c.name === COOKIE_NAME);
      t.same(cookies.map((c) => c.domain).sort(), [`gateway.${CLOUD}`, SITE], 'our cookie on the gateway and on the https site');
      const served = await tg.waitForEntry((e) => e.url === page && e.status === 200);
      t.match(served, { login: 'alice@example.com', department: 'Engineering', action: 'allowed', decrypted: true, sni: SITE }, 'identified inside TLS by the planted cookie');

      // The cookie keeps working inside TLS: another page, no sign-in.
      const again = await visit(p, `https://${SITE}:${origin.port}/again`);
      t.equal(again.status, 200);
      t.same(since(), [`GET https://${SITE}/again`], 'straight to the page');
      const second = await tg.waitForEntry((e) => e.url.endsWith('/again') && e.status === 200);
      t.equal(second.login, 'alice@example.com');
      t.same(leaks(origin), [], 'the origin never saw our cookie or our token');

      // The status page over https, inside TLS, learns who this is from the gateway and comes back to https.
      const status = await visit(p, `https://ip.${CLOUD}/`);
      t.equal(status.status, 200);
      t.equal(new URL(status.url).protocol, 'https:', 'still on https');
      t.notOk(status.url.includes(TOKEN_PARAM), 'no token left in the address bar');
      const rows: Record<string, string> = {};
      for (const tr of await p.locator('tr').all()) rows[(await tr.locator('th').innerText()).trim()] = (await tr.locator('td').innerText()).trim();
      t.match(rows, { User: 'alice@example.com', 'Identified by': 'cookie', Authentication: 'authenticated' }, 'the status page shows alice');
      if (scheme === 'https') {
        t.notOk(tg.entries().some((e) => e.host.endsWith(CLOUD) && e.protocol === 'HTTP' && !e.decrypted), 'no plain-http request to our own hosts');
      }
    });
  }
}
