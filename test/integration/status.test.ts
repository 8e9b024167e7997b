/**
 * The status page at ip.<cloud> end to end: a real Tollgate, a real lab IdP, browser-like clients.
 *
 *   client -> proxy (GET http://ip.tollgate.test/)           -> through Tollgate (anonymous, exempt, signed in)
 *   client -> control listener (Host: ip.tollgate.test)      -> direct
 *   client -> proxy port, origin form (GET / Host: ip...)    -> direct
 */
import t, { type Test } from 'tap';
import { controlCall, rawExchange, startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';
import { FlowClient, LAB_USERS, startLabIdpFixture } from '../helpers/flow.js';
import { htmlField } from '../helpers/saml.js';
import { startOrigin } from '../helpers/origin.js';
import type { StatusView } from '../../src/status/view.js';

const CLOUD = 'tollgate.test';
const STATUS = `http://ip.${CLOUD}/`;

/** The JSON document's keys, as the README's table documents them. */
const KEYS = [
  'viaProxy', 'reachedBy', 'cloud', 'node', 'worker', 'clientIp', 'clientIpSource', 'peerIp', 'location', 'sublocation', 'enforceAuthentication',
  'authenticated', 'identifiedBy', 'exemptBecause', 'user', 'logoutCsrf', 'configVersion', 'pacUrls', 'caCertificate',
].sort();
const USER_KEYS = ['loginName', 'displayName', 'department', 'groups', 'idp', 'idpId', 'signedInAt', 'expiresAt', 'ageSeconds'].sort();

/** A lab user whose every attribute tries to break out of HTML text, attributes and lines. */
const MALLORY = {
  loginName: `mal"lory'<script>alert(1)</script>@example.com`,
  password: 'mallory-pw',
  displayName: `<script>alert("name")</script>`,
  department: `R&D "<img src=x onerror=alert(2)>"`,
  groups: [`<script>alert('group')</script>`, `a"b'c`],
};

const origin = await startOrigin();
const lab = await startLabIdpFixture({ users: [...LAB_USERS, MALLORY] });
const tg = await startTestTollgate((dir) =>
  testConfig(dir, {
    locations: [
      // Sign-in by cookie only, so "identified by cookie" is what the page must show.
      { name: 'office', ips: ['127.0.0.0/26'], enforceAuthentication: true, trustedForwarders: ['127.0.0.10'], sublocations: [{ name: 'lobby', ips: ['127.0.0.32/28'] }] },
      { name: 'open', ips: ['127.0.0.64/26'] },
    ],
    hosts: { 'www.origin-a.test': '127.0.0.1' },
    idps: [lab.config()],
  }),
);
t.teardown(async () => {
  await tg.close();
  await lab.close();
  await origin.close();
});
const site = `http://www.origin-a.test:${origin.port}/hello`;
const pacUrl = `http://127.0.0.1:${tg.proxyPort}/proxy.pac`;

async function statusJson(t: Test, client: FlowClient | null, localAddress = '127.0.0.2', headers: Record<string, string> = {}): Promise<StatusView> {
  const r = client === null ? await viaProxy(tg.proxyPort, `${STATUS}?format=json`, { localAddress, headers }) : await client.request(`${STATUS}?format=json`, { headers });
  t.equal(r.status, 200, 'status JSON answers 200');
  t.match(r.headers['content-type'], /^application\/json/);
  const j = JSON.parse(r.body) as StatusView;
  t.same(Object.keys(j).sort(), KEYS, 'the documented keys, no more, no fewer');
  return j;
}

t.test('anonymous: through Tollgate, at a location that requires sign-in, not signed in', async (t) => {
  const j = await statusJson(t, null, '127.0.0.2');
  t.same(j, {
    viaProxy: true,
    reachedBy: 'proxy',
    cloud: CLOUD,
    node: 'test-node',
    worker: null,
    clientIp: '127.0.0.2',
    clientIpSource: 'peer',
    peerIp: '127.0.0.2',
    location: 'office',
    sublocation: null,
    enforceAuthentication: true,
    authenticated: false,
    identifiedBy: 'none',
    exemptBecause: null,
    user: null,
    logoutCsrf: null,
    configVersion: 1,
    pacUrls: [pacUrl, `http://pac.${CLOUD}/proxy.pac`],
    caCertificate: null,
  });
  const lobby = await statusJson(t, null, '127.0.0.33');
  t.match(lobby, { location: 'office', sublocation: 'lobby' }, 'a sublocation is named');
});

t.test('exempt: a location that does not require sign-in; a trusted forwarder\'s X-Forwarded-For places the client', async (t) => {
  const j = await statusJson(t, null, '127.0.0.70');
  t.match(j, { viaProxy: true, clientIp: '127.0.0.70', clientIpSource: 'peer', location: 'open', enforceAuthentication: false, authenticated: false, identifiedBy: 'exempt', exemptBecause: 'location', user: null });
  const fwd = await statusJson(t, null, '127.0.0.10', { 'x-forwarded-for': '127.0.0.71' });
  t.match(fwd, { clientIp: '127.0.0.71', clientIpSource: 'x-forwarded-for', peerIp: '127.0.0.10', location: 'open', identifiedBy: 'exempt' });
  const text = await viaProxy(tg.proxyPort, STATUS, { localAddress: '127.0.0.10', headers: { 'x-forwarded-for': '127.0.0.71', accept: 'text/plain' } });
  t.match(text.body, 'as reported in X-Forwarded-For by the trusted forwarder 127.0.0.10', 'the page says how it learnt the address');
  const untrusted = await statusJson(t, null, '127.0.0.11', { 'x-forwarded-for': '127.0.0.71' });
  t.match(untrusted, { clientIp: '127.0.0.11', clientIpSource: 'peer', location: 'office' }, 'an untrusted peer\'s X-Forwarded-For is ignored');
});

t.test('authenticated: after a lab-IdP sign-in the page shows the user and its Logout works', async (t) => {
  const alice = new FlowClient(tg.proxyPort, '127.0.0.3');
  const signed = await alice.signIn(site, 'alice@example.com', 'alice-pw');
  t.equal(signed.reply.status, 200, 'signed in and back on the site');
  const page = await alice.follow(STATUS); // the probe plants our cookie on ip.<cloud>
  t.equal(page.reply.status, 200);
  t.match(page.reply.headers['content-security-policy'], /default-src 'none'; style-src 'sha256-/, 'HTML under a strict CSP');
  t.match(page.reply.body, '<h1>You are accessing the web through Tollgate</h1>');
  t.match(page.reply.body, 'You are signed in as <strong>alice@example.com</strong> (<strong>Alice Example</strong>) through <strong>Lab IdP lab</strong>');

  const before = Date.now();
  const j = await statusJson(t, alice);
  t.match(j, { viaProxy: true, location: 'office', authenticated: true, identifiedBy: 'cookie', exemptBecause: null });
  t.same(Object.keys(j.user ?? {}).sort(), USER_KEYS);
  t.match(j.user, { loginName: 'alice@example.com', displayName: 'Alice Example', department: 'Engineering', groups: ['Engineering', 'VPN Users'], idp: 'Lab IdP lab', idpId: 'lab' });
  const start = Date.parse(j.user!.signedInAt);
  t.ok(start <= before && before - start < 60_000, 'session start is when the sign-in happened');
  t.ok(Date.parse(j.user!.expiresAt) > before, 'and it expires later');
  t.type(j.logoutCsrf, 'string');

  const csrf = htmlField(page.reply.body, 'csrf');
  t.equal(csrf, j.logoutCsrf, 'the Logout form carries the CSRF token');
  const out = await alice.request(`${STATUS}logout`, { form: { csrf: csrf! } });
  t.equal(out.status, 303, 'the Logout POST is accepted');
  const after = await statusJson(t, alice);
  t.match(after, { authenticated: false, identifiedBy: 'none', user: null, logoutCsrf: null }, 'and the session is gone');
});

t.test('direct: the control listener and origin form on the proxy port say the request did not come through Tollgate', async (t) => {
  const bob = new FlowClient(tg.proxyPort, '127.0.0.4');
  t.equal((await bob.signIn(site, 'bob@example.com', 'bob-pw')).reply.status, 200);
  await bob.follow(STATUS);
  const cookie = `tollgate_sid=${bob.cookie(`ip.${CLOUD}`, 'tollgate_sid')}`;
  t.equal((await statusJson(t, bob)).user?.loginName, 'bob@example.com', 'bob is signed in through the proxy');

  const control = await controlCall(tg.controlPort, 'GET', '/?format=json', { host: `ip.${CLOUD}`, cookie });
  t.equal(control.status, 200);
  const c = JSON.parse(control.body) as StatusView;
  t.same(Object.keys(c).sort(), KEYS);
  t.match(c, { viaProxy: false, reachedBy: 'control-listener', clientIp: '127.0.0.1', location: 'office', authenticated: false, identifiedBy: 'none', user: null, logoutCsrf: null });
  t.same(c.pacUrls, [pacUrl, `http://pac.${CLOUD}/proxy.pac`], 'with the PAC URLs to set');

  const raw = await rawExchange(tg.proxyPort, `GET /?format=json HTTP/1.1\r\nHost: ip.${CLOUD}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.4');
  t.match(raw, /^HTTP\/1\.1 200 /);
  const o = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as StatusView;
  t.match(o, { viaProxy: false, reachedBy: 'proxy-listener-direct', clientIp: '127.0.0.4', location: 'office', authenticated: false, user: null, logoutCsrf: null }, 'origin form shows no identity, even with a valid cookie');

  const page = await controlCall(tg.controlPort, 'GET', '/', { host: `ip.${CLOUD}`, accept: 'text/html' });
  t.match(page.body, '<h1>You are not going through Tollgate</h1>');
  t.match(page.body, `<code>${pacUrl}</code>`, 'the HTML names the proxy\'s PAC URL');
  t.match(page.body, `<code>http://pac.${CLOUD}/proxy.pac</code>`);
  t.notMatch(page.body, 'Logout');
  t.notMatch(page.body, 'bob@example.com');
});

t.test('text variant: ?format=text or Accept: text/plain, the same facts as plain lines', async (t) => {
  for (const [how, url, headers] of [
    ['?format=text', `${STATUS}?format=text`, {}],
    ['Accept: text/plain', STATUS, { accept: 'text/plain' }],
  ] as const) {
    const r = await viaProxy(tg.proxyPort, url, { localAddress: '127.0.0.5', headers });
    t.equal(r.status, 200, how);
    t.match(r.headers['content-type'], /^text\/plain; charset=utf-8/, how);
    const lines = r.body.split('\n');
    t.equal(lines[0], 'You are accessing the web through Tollgate', `${how}: the headline first`);
    t.ok(lines.includes('Your IP address:  127.0.0.5'), `${how}: the facts as label: value`);
    t.ok(lines.includes('Identified by:    not authenticated'), how);
    t.notMatch(r.body, '<', `${how}: no markup`);
  }
  const direct = await controlCall(tg.controlPort, 'GET', '/', { host: `ip.${CLOUD}`, accept: 'text/plain' });
  t.match(direct.body, /^You are not going through Tollgate\n/);
  t.match(direct.body, `  ${pacUrl} (`);
  const bad = await viaProxy(tg.proxyPort, `${STATUS}?format=xml`, { headers: { accept: 'application/json' } });
  t.equal(bad.status, 400);
  t.match(JSON.parse(bad.body), { error: { code: 'bad_format' } }, 'an unknown format is a clear 400');
});

t.test('escaping: a login name, name, department and groups with <script> and quotes stay text', async (t) => {
  const mallory = new FlowClient(tg.proxyPort, '127.0.0.6');
  const signed = await mallory.signIn(site, MALLORY.loginName, MALLORY.password);
  t.equal(signed.reply.status, 200, 'mallory signed in');
  const page = await mallory.follow(STATUS);
  const body = page.reply.body;
  t.notMatch(body, /<script/i, 'no script element anywhere');
  t.notMatch(body, /<img/i, 'no injected element');
  t.match(body, 'mal&quot;lory&#39;&lt;script&gt;alert(1)&lt;/script&gt;@example.com', 'the login name, escaped');
  t.match(body, '&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;', 'the display name, escaped');
  t.match(body, 'R&amp;D &quot;&lt;img src=x onerror=alert(2)&gt;&quot;', 'the department, escaped');
  t.match(body, '&lt;script&gt;alert(&#39;group&#39;)&lt;/script&gt;, a&quot;b&#39;c', 'the groups, escaped');
  const j = await statusJson(t, mallory);
  t.match(j.user, { loginName: MALLORY.loginName, displayName: MALLORY.displayName, department: MALLORY.department, groups: MALLORY.groups }, 'JSON carries the exact values');
  const text = await mallory.request(STATUS, { headers: { accept: 'text/plain' } });
  t.equal(text.headers['x-content-type-options'], 'nosniff', 'the text variant is never sniffed as HTML');
  t.ok(text.body.split('\n').includes(`User:              ${MALLORY.loginName}`), 'the text variant shows the login name as it is, on its own line');
});
