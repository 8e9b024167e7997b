/**
 * Abuse of the sign-in flow, each once found by review: requests that crashed the proxy, login CSRF
 * at the ACS, other clients' sign-in links, completion from another browser, cookies set by
 * origins, store flooding, and the admin API from web pages.
 */
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import { controlCall, startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';
import { BROWSER_UA, FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { COOKIE_NAME, TOKEN_PARAM } from '../../src/auth/identify.js';


t.test('sign-in abuse is refused without harm', async (t) => {
  const origin = await startOrigin();
  const lab = await startLabIdpFixture();
  const tg = await startTestTollgate((dir) =>
    testConfig(dir, {
      locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true, surrogate: { enabled: true } }],
      hosts: { 'www.site.test': '127.0.0.1', 'evil.test': '127.0.0.1' },
      idps: [lab.config()],
    }),
  );
  t.teardown(async () => {
    await tg.close();
    await lab.close();
    await origin.close();
  });
  const site = `http://www.site.test:${origin.port}`;

  // Our token's name where no token parameter is, and a malformed escape, once crashed the node.
  for (const path of [`/${TOKEN_PARAM}`, `/?x=${TOKEN_PARAM}`, `/a?${TOKEN_PARAM}`]) {
    const r = await viaProxy(tg.proxyPort, `${site}${path}`, { localAddress: '127.0.0.40', headers: { 'user-agent': BROWSER_UA } });
    t.equal(r.status, 307, `${path}: an ordinary unidentified page load`);
  }
  const meta = await viaProxy(tg.proxyPort, 'http://login.tollgate.test/saml/metadata/%E0%A4%A');
  t.equal(meta.status, 404, 'a malformed escape in the metadata path is a 404');
  t.equal((await controlCall(tg.controlPort, 'GET', '/saml/metadata/%E0%A4%A')).status, 404, 'on the control listener too');
  t.equal((await viaProxy(tg.proxyPort, 'http://ip.tollgate.test/?format=json')).status, 200, 'the node is still up');

  // Login CSRF: the attacker's own response, posted from the victim's browser, is refused.
  const attacker = new FlowClient(tg.proxyPort, '127.0.0.41');
  const victim = new FlowClient(tg.proxyPort, '127.0.0.42');
  const theirs = await attacker.obtainResponse(`${site}/hello`, 'bob@example.com', 'bob-pw');
  const csrf = await victim.request(theirs.acsUrl, { form: { SAMLResponse: theirs.samlResponse, RelayState: theirs.relayState } });
  t.equal(csrf.status, 403, "another client's response is refused at the ACS");
  t.equal(csrf.headers['x-tollgate-error'], 'SAML_OTHER_CLIENT');
  t.equal(csrf.headers.location, undefined);
  const victimStatus = JSON.parse((await victim.request('http://ip.tollgate.test/', { headers: { accept: 'application/json' } })).body) as { authenticated: boolean };
  t.equal(victimStatus.authenticated, false, 'the victim is not signed in as the attacker (not even by surrogate)');

  // Another client's sign-in link does not redirect anywhere.
  const link = await attacker.request(`http://evil.test:${origin.port}/phish`);
  const borrowed = await victim.request(String(link.headers.location));
  t.equal(borrowed.status, 403, "another client's sign-in link is refused");
  t.equal(borrowed.headers['x-tollgate-error'], 'login_other_client');
  t.equal(borrowed.headers.location, undefined, 'and redirects nowhere');
  const viaClstart = await victim.signIn(`http://login.tollgate.test/clstart?version=1&_domain=example.com&redrurl=${encodeURIComponent(String(link.headers.location))}`, 'alice@example.com', 'alice-pw');
  t.equal(viaClstart.reply.headers['x-tollgate-error'], 'login_other_client', 'nor through clstart: after signing in, the borrowed link still leads nowhere');
  t.notOk(viaClstart.hops.some((h) => h.url.includes('evil.test')), 'evil.test was never visited');

  // Completion from a browser that did not start the sign-in (same IP, other cookie jar) is refused.
  const started = new FlowClient(tg.proxyPort, '127.0.0.43');
  const got = await started.obtainResponse(`${site}/hello`, 'alice@example.com', 'alice-pw');
  const acs = await started.request(got.acsUrl, { form: { SAMLResponse: got.samlResponse, RelayState: got.relayState } });
  t.equal(acs.status, 303);
  const otherBrowser = new FlowClient(tg.proxyPort, '127.0.0.43');
  const stolen = await otherBrowser.request(String(acs.headers.location));
  t.equal(stolen.status, 403, 'the /complete link does not plant the session in another browser');
  t.equal(stolen.headers['x-tollgate-error'], 'login_other_browser');
  t.notOk(otherBrowser.cookie('gateway.tollgate.test', COOKIE_NAME));
  const own = await started.follow(String(acs.headers.location));
  t.equal(own.reply.status, 200, 'and the rightful browser still completes with the same link');

  // An origin cannot set Tollgate's cookie.
  const setByOrigin = await started.request(`${site}/set-cookie?name=${COOKIE_NAME}`);
  t.notOk(String(setByOrigin.headers['set-cookie'] ?? '').includes(`${COOKIE_NAME}=`), "an origin's Set-Cookie for our name is dropped");
  t.match(String(setByOrigin.headers['set-cookie']), /own=1/, 'its other cookies pass');

  // The store cannot be flooded with sign-ins from one address.
  const flood = new FlowClient(tg.proxyPort, '127.0.0.44');
  let limited = 0;
  for (let i = 0; i < 320; i++) if ((await flood.request(`${site}/x${i}`)).status === 429) limited++;
  t.ok(limited >= 15, `beyond 300 sign-ins a minute from one address: 429 (${limited} of 320)`);

  // A whole sign-in (page load, then the trip to the IdP) counts once: 200 of them pass.
  const busy = new FlowClient(tg.proxyPort, '127.0.0.45');
  const statuses = new Map<number, number>();
  let signInLink = '';
  for (let i = 0; i < 200; i++) {
    const page = await busy.request(`${site}/y${i}`);
    signInLink = String(page.headers.location);
    const toIdp = page.status === 307 ? (await busy.request(signInLink)).status : page.status;
    statuses.set(toIdp, (statuses.get(toIdp) ?? 0) + 1);
  }
  t.same([...statuses], [[302, 200]], `200 sign-ins from one address all reach the IdP (${JSON.stringify([...statuses])})`);
  // Going to the IdP again and again with one sign-in link counts each time.
  let repeats = 0;
  for (let i = 0; i < 150 && repeats === 0; i++) if ((await busy.request(signInLink)).status === 429) repeats = i + 1;
  t.ok(repeats > 0 && repeats <= 101, `repeated trips with one link are counted: 429 after ${repeats}`);

  // The admin API does not answer web pages (CSRF) or foreign host names (DNS rebinding).
  t.equal((await controlCall(tg.controlPort, 'POST', '/admin/reauth', { ...tg.admin, origin: 'http://evil.test' })).status, 403, 'cross-site POST refused');
  t.equal((await controlCall(tg.controlPort, 'POST', '/admin/reauth', { ...tg.admin, 'sec-fetch-site': 'cross-site' })).status, 403);
  t.equal((await controlCall(tg.controlPort, 'GET', '/admin/users?idp=lab', { ...tg.admin, host: 'rebind.evil.test' })).status, 403, 'rebound host name refused');
  t.equal((await controlCall(tg.controlPort, 'GET', '/admin/users?idp=lab', tg.admin)).status, 200, 'the CLI-style call still works');
});
