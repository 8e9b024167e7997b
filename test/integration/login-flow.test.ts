/**
 * The sign-in flow end to end, at the HTTP level: a browser-like client behind the proxy, a real
 * lab IdP that signs real responses, real origins, and the embedded store.
 */
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import { connectVia, controlCall, startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';
import { BROWSER_UA, FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { COOKIE_NAME, TOKEN_PARAM } from '../../src/auth/identify.js';

const CLOUD = 'tollgate.test';


t.test('sign-in through the gateway, cookies per host, surrogate, exemptions, logout, clstart, reauth', async (t) => {
  const origin = await startOrigin();
  const lab = await startLabIdpFixture();
  const tg = await startTestTollgate((dir) =>
    testConfig(dir, {
      locations: [
        {
          name: 'lab',
          ips: ['127.0.0.0/26', '::1'],
          enforceAuthentication: true,
          surrogate: { enabled: true },
        },
      ],
      connectPorts: [443, origin.port],
      hosts: { 'www.origin-a.test': '127.0.0.1', 'www.origin-b.test': '127.0.0.1', 'open.exempt.test': '127.0.0.1' },
      idps: [lab.config()],
      authentication: { exemptions: { hosts: ['*.exempt.test'] } },
    }),
  );
  t.teardown(async () => {
    await tg.close();
    await lab.close();
    await origin.close();
  });
  const a = `http://www.origin-a.test:${origin.port}`;
  const b = `http://www.origin-b.test:${origin.port}`;
  const alice = new FlowClient(tg.proxyPort, '127.0.0.2');

  // 1. An unidentified page load goes to the gateway, which (one IdP) goes straight to the IdP.
  const first = await alice.request(`${a}/hello?x=1`);
  t.equal(first.status, 307, 'unidentified browser GET is redirected');
  t.match(first.headers.location, new RegExp(`^http://gateway\\.${CLOUD.replace('.', '\\.')}/login\\?r=[A-Za-z0-9_-]{40,}$`), 'to the gateway, with only an opaque id');
  t.notOk(String(first.headers.location).includes('origin-a'), 'the original URL is kept server-side, not in the redirect');

  const signed = await alice.signIn(`${a}/hello?x=1`, 'alice@example.com', 'alice-pw');
  if (signed.reply.status !== 200) t.comment(JSON.stringify(tg.app.lines.filter((l) => Number(l.level) >= 40)));
  t.equal(signed.idpPage.url.startsWith(lab.idp.ssoUrl), true, 'the browser reached the IdP');
  t.equal(signed.reply.status, 200, 'back on the original page after signing in');
  t.equal(signed.url, `${a}/hello?x=1`, 'at the original URL, token removed');
  t.equal(signed.reply.body, 'hello world\n', "the origin's page");
  const hops = signed.hops.map((h) => `${h.status} ${new URL(h.url).host}${new URL(h.url).pathname}`);
  t.same(hops, [`303 login.${CLOUD}/sfc_sso`, `307 gateway.${CLOUD}/complete`, `307 www.origin-a.test:${origin.port}/hello`, `200 www.origin-a.test:${origin.port}/hello`], 'ACS -> gateway cookie -> token swap -> page');
  t.ok(alice.cookie(`gateway.${CLOUD}`, COOKIE_NAME), 'gateway cookie set on the gateway host');
  t.ok(alice.cookie('www.origin-a.test', COOKIE_NAME), 'domain cookie set on the origin host');
  const upstream = origin.seen.filter((s) => s.url.startsWith('/hello'));
  t.ok(upstream.length >= 1, 'origin was reached');
  for (const s of upstream) {
    t.notOk(String(s.headers.cookie ?? '').includes(COOKIE_NAME), 'our cookie never goes upstream');
    t.notOk(s.url.includes(TOKEN_PARAM), 'our token never goes upstream');
  }
  const entry = await tg.waitForEntry((e) => e.url === `${a}/hello?x=1` && e.status === 200);
  t.equal(entry.login, 'alice@example.com', 'the access log attributes the request');
  t.equal(entry.department, 'Engineering');
  t.same(entry.groups, ['Engineering', 'VPN Users'], 'and the groups');

  const logged = JSON.stringify(tg.entries());
  t.notMatch(logged, new RegExp(`${TOKEN_PARAM}=[A-Za-z0-9_-]{20}`), 'site tokens are redacted in the access log');
  t.notMatch(logged, /complete\?t=[A-Za-z0-9_-]{20}/, 'gateway tokens too');
  t.match(logged, /\[redacted\]/);

  // Our cookie is stripped even when the client sends it next to the site's own cookies.
  await alice.request(`${a}/hello?y=2`, { headers: { cookie: `site=1; ${COOKIE_NAME}=${alice.cookie('www.origin-a.test', COOKIE_NAME)}; other=2` } });
  t.equal(origin.seen.at(-1)!.headers.cookie, 'site=1; other=2', "the site's cookies pass, ours does not");

  // 2. A second host: the domain-cookie step, without another IdP login.
  const second = await alice.follow(`${b}/hello`);
  t.equal(second.reply.status, 200);
  t.notOk(second.hops.some((h) => h.url.startsWith(lab.idp.ssoUrl)), 'no IdP round trip for the second host');
  t.ok(second.hops.some((h) => h.url.startsWith(`http://gateway.${CLOUD}/login`)), 'it went through the gateway');

  // 3. The status page knows the user (through the probe on first visit).
  const status = await alice.follow(`http://ip.${CLOUD}/`);
  t.equal(status.reply.status, 200);
  t.match(status.reply.body, /alice@example\.com/, 'status page shows the login name');
  t.match(status.reply.body, /Alice Example/);
  t.match(status.reply.body, /Engineering, VPN Users/, 'and the groups');
  t.match(status.reply.body, /Lab IdP lab/, 'and the IdP');
  t.match(status.reply.body, /Identified by<\/th><td>IP surrogate/, 'this location maps the IP, so the status page knows the user without a cookie');
  const json = JSON.parse((await alice.request(`http://ip.${CLOUD}/?format=json`, { headers: { accept: 'application/json' } })).body) as {
    identifiedBy: string;
    user: { loginName: string; department: string; groups: string[] };
    logoutCsrf: string;
  };
  t.equal(json.identifiedBy, 'surrogate');
  t.equal(json.user.department, 'Engineering');

  // 4. The surrogate: a CONNECT from the same IP is attributed; from another IP it is refused.
  const tun = await connectVia(tg.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.2');
  t.equal(tun.status, 200, 'CONNECT from the signed-in IP is allowed by the surrogate');
  tun.socket.destroy();
  const tunEntry = await tg.waitForEntry((e) => e.protocol === 'TUNNEL' && e.clientIp === '127.0.0.2');
  t.equal(tunEntry.login, 'alice@example.com', 'and attributed to the user');
  const other = await connectVia(tg.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.3');
  t.equal(other.status, 403, 'CONNECT from another IP is refused');
  t.equal(other.headers['x-tollgate-error'], 'auth_required');
  const curlSame = await viaProxy(tg.proxyPort, `${a}/hello`, { localAddress: '127.0.0.2', headers: { 'user-agent': 'curl/8.5.0' } });
  t.equal(curlSame.status, 200, 'a non-browser client on the same IP is identified by the surrogate');

  // 5. What cannot be sent to a login page gets a plain refusal.
  const curl = await viaProxy(tg.proxyPort, `${a}/hello`, { localAddress: '127.0.0.3', headers: { 'user-agent': 'curl/8.5.0' } });
  t.equal(curl.status, 403, 'non-browser: 403');
  t.match(curl.headers['content-type'], /text\/plain/);
  t.match(curl.body, /not a browser/);
  const post = await viaProxy(tg.proxyPort, `${a}/echo`, { method: 'POST', body: 'data', localAddress: '127.0.0.3', headers: { 'user-agent': BROWSER_UA, 'content-type': 'text/plain' } });
  t.equal(post.status, 403, 'browser POST: 403, not a login page');
  t.match(post.body, /POST requests cannot be sent to a login page/);
  const xhr = await viaProxy(tg.proxyPort, `${a}/hello`, { localAddress: '127.0.0.3', headers: { 'user-agent': BROWSER_UA, 'sec-fetch-mode': 'cors' } });
  t.equal(xhr.status, 403, 'XHR: 403');
  const xrw = await viaProxy(tg.proxyPort, `${a}/hello`, { localAddress: '127.0.0.3', headers: { 'user-agent': BROWSER_UA, 'x-requested-with': 'XMLHttpRequest' } });
  t.equal(xrw.status, 403, 'X-Requested-With: 403');

  // 6. Exempt hosts pass without identity and are logged as exempt.
  const ex = await viaProxy(tg.proxyPort, `http://open.exempt.test:${origin.port}/hello`, { localAddress: '127.0.0.3', headers: { 'user-agent': 'curl/8' } });
  t.equal(ex.status, 200, 'exempt host needs no sign-in');
  t.equal((await tg.waitForEntry((e) => e.host === 'open.exempt.test')).action, 'exempt');
  const idpDirect = await viaProxy(tg.proxyPort, lab.idp.entityId, { localAddress: '127.0.0.3', headers: { 'user-agent': 'curl/8' } });
  t.not(idpDirect.status, 403, "the IdP's own host is exempt automatically");

  // 7. A token is single use and bound to the client's IP; an off-site RelayState redirects nowhere.
  const replayed = await alice.request(`${a}/hello?${TOKEN_PARAM}=${'x'.repeat(43)}`);
  t.equal(replayed.status, 403, 'an unknown token is refused with a page, not a redirect loop');
  t.equal(replayed.headers['x-tollgate-error'], 'token_invalid');
  const offsite = await alice.request(`http://login.${CLOUD}/sfc_sso`, { form: { SAMLResponse: 'PHNhbWxwOlJlc3BvbnNlLz4=', RelayState: 'https://evil.example/' } });
  t.equal(offsite.headers.location, undefined, 'no redirect for a foreign RelayState');
  t.equal(offsite.status, 403);
  t.match(offsite.body, /SAML_IN_RESPONSE_TO/);

  // 8. JIT provisioning put the user, department and groups in the directory.
  const users = JSON.parse((await controlCall(tg.controlPort, 'GET', '/admin/users?idp=lab', tg.admin)).body) as { users: { userName: string; source: string; department: string; groups: string[] }[] };
  const au = users.users.find((u) => u.userName === 'alice@example.com');
  t.equal(au?.source, 'jit');
  t.equal(au?.department, 'Engineering');
  t.same([...(au?.groups ?? [])].sort(), ['Engineering', 'VPN Users']);

  // 9. Logout (POST + CSRF) ends the session: cookies and surrogate.
  const noCsrf = await alice.request(`http://ip.${CLOUD}/logout`, { form: { csrf: 'wrong' } });
  t.equal(noCsrf.status, 403, 'logout without the right CSRF token is refused');
  const crossSite = await alice.request(`http://ip.${CLOUD}/logout`, { form: { csrf: json.logoutCsrf }, headers: { origin: 'http://evil.test' } });
  t.equal(crossSite.status, 403, 'logout from another site is refused');
  const out = await alice.request(`http://ip.${CLOUD}/logout`, { form: { csrf: json.logoutCsrf } });
  t.equal(out.status, 303, 'logout');
  const afterOut = await alice.follow(`${a}/hello`);
  t.ok(afterOut.hops.some((h) => h.url.startsWith(lab.idp.ssoUrl)), 'after logout the next page load goes to the IdP again');
  const tunAfter = await connectVia(tg.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.2');
  t.equal(tunAfter.status, 403, 'and the surrogate is gone');

  // 10. clstart: only our hosts or the allow-list; then it lands on redrurl after sign-in.
  const evil = await alice.request(`http://login.${CLOUD}/clstart?version=1&_domain=example.com&redrurl=${encodeURIComponent('http://evil.test/')}`);
  t.equal(evil.status, 400, 'clstart refuses an off-site redrurl');
  t.equal(evil.headers.location, undefined);
  const cl = await alice.signIn(`http://login.${CLOUD}/clstart?version=1&_domain=example.com&redrurl=${encodeURIComponent(`http://ip.${CLOUD}/`)}`, 'alice@example.com', 'alice-pw');
  t.equal(new URL(cl.url).host, `ip.${CLOUD}`, 'clstart lands on redrurl');
  t.match(cl.reply.body, /alice@example\.com/);

  // 11. Force re-authentication for one user reaches their sessions.
  const re = await controlCall(tg.controlPort, 'POST', '/admin/reauth?user=ALICE@example.com', tg.admin);
  t.equal(re.status, 200);
  t.ok((JSON.parse(re.body) as { revoked: number }).revoked >= 1, 'sessions revoked');
  const afterRe = await alice.follow(`${a}/hello`);
  t.ok(afterRe.hops.some((h) => h.url.startsWith(lab.idp.ssoUrl)), 'after reauth the user signs in again');
});
