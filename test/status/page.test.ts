import { createHash } from 'node:crypto';
import t from 'tap';
import { renderStatusHtml, STATUS_CSP } from '../../src/status/page.js';
import { renderStatusText } from '../../src/status/text.js';
import { html, SafeHtml } from '../../src/status/html.js';
import type { StatusView } from '../../src/status/view.js';

const HOSTILE = `<script>alert("x")</script>'&`;
const ESCAPED = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;';

const SIGNED_IN: StatusView = {
  viaProxy: true,
  reachedBy: 'proxy',
  cloud: 'tollgate.test',
  node: 'node-1',
  worker: null,
  clientIp: '10.0.0.5',
  clientIpSource: 'peer',
  peerIp: '10.0.0.5',
  location: 'office',
  sublocation: 'floor 2',
  enforceAuthentication: true,
  authenticated: true,
  identifiedBy: 'cookie',
  exemptBecause: null,
  user: {
    loginName: 'alice@example.com',
    displayName: 'Alice Example',
    department: 'Engineering',
    groups: ['Engineering', 'VPN Users'],
    idp: 'Okta',
    idpId: 'okta',
    signedInAt: '2026-01-01T10:00:00.000Z',
    expiresAt: '2026-01-02T10:00:00.000Z',
    ageSeconds: 600,
  },
  logoutCsrf: 'csrf-token-1',
  configVersion: 2,
  pacUrls: ['http://127.0.0.1:9400/proxy.pac', 'http://pac.tollgate.test/proxy.pac'],
  caCertificate: null,
};
const DIRECT: StatusView = { ...SIGNED_IN, viaProxy: false, reachedBy: 'control-listener', authenticated: false, identifiedBy: 'none', user: null, logoutCsrf: null };

/** hostile puts the hostile string in every value a session, config or request can set. */
function hostile(v: StatusView): StatusView {
  return {
    ...v,
    cloud: `${HOSTILE}.test`,
    node: HOSTILE,
    location: HOSTILE,
    sublocation: HOSTILE,
    user: v.user && { ...v.user, loginName: HOSTILE, displayName: HOSTILE, department: HOSTILE, groups: [HOSTILE, `"${HOSTILE}`], idp: HOSTILE },
    logoutCsrf: v.logoutCsrf && `"><script>`,
    pacUrls: [`http://${HOSTILE}/proxy.pac`],
    caCertificate: { derUrl: `http://"${HOSTILE}/ca.crt`, pemUrl: `javascript:${HOSTILE}`, subject: HOSTILE, sha256: HOSTILE },
  };
}

t.test('every value is escaped: hostile strings in every field never become markup', async (t) => {
  for (const [name, v] of [['signed in', hostile(SIGNED_IN)], ['direct', hostile(DIRECT)]] as const) {
    const page = renderStatusHtml(v);
    t.notMatch(page, /<script/i, `${name}: no script element`);
    t.notMatch(page, /"><script/, `${name}: no attribute breaks out`);
    t.ok(page.split(ESCAPED).length > 6, `${name}: the values are there, escaped`);
    // Outside the escaped values, only our own markup: strip them and no hostile character is left.
    t.notMatch(page.split(ESCAPED).join(''), /alert/, `${name}: nothing of the value is left unescaped`);
  }
});

t.test('html escapes every interpolated string, number and list, and inserts only its own markup as is', async (t) => {
  const inner = html`<b>${'<i>'}</b>`;
  t.equal(html`<p title="${'"x"'}">${inner}${['<a>', 1, null, false, undefined, new SafeHtml('<br>')]}</p>`.value, '<p title="&quot;x&quot;"><b>&lt;i&gt;</b>&lt;a&gt;1<br></p>');
});

t.test('the page reads as a status page: headline, plain words, a labelled table, Logout, phone viewport', async (t) => {
  const page = renderStatusHtml(SIGNED_IN);
  t.match(page, '<html lang="en">');
  t.match(page, '<meta name="viewport" content="width=device-width, initial-scale=1">');
  t.match(page, '<h1>You are accessing the web through Tollgate</h1>');
  t.match(page, 'Your request came through Tollgate node <strong>node-1</strong> in the cloud <strong>tollgate.test</strong>.');
  t.match(page, 'You are in the location <strong>office</strong>, sublocation <strong>floor 2</strong>.');
  t.match(page, 'You are signed in as <strong>alice@example.com</strong> (<strong>Alice Example</strong>) through <strong>Okta</strong>. Tollgate recognised this request by its cookie on this site.');
  for (const [k, v] of [
    ['Through Tollgate', 'Yes'],
    ['Your IP address', '10.0.0.5'],
    ['IP address from', 'your connection (peer address)'],
    ['Location', 'office'],
    ['Sublocation', 'floor 2'],
    ['Authentication', 'authenticated'],
    ['User', 'alice@example.com'],
    ['Groups', 'Engineering, VPN Users'],
    ['Identity provider', 'Okta'],
    ['Signed in', '2026-01-01 10:00:00 UTC (10 min ago)'],
    ['Session expires', '2026-01-02 10:00:00 UTC'],
    ['Identified by', 'cookie'],
  ] as const) {
    t.match(page, `<tr><th scope="row">${k}</th><td>${v}</td></tr>`, k);
  }
  t.match(page, '<form method="post" action="/logout"><input type="hidden" name="csrf" value="csrf-token-1"><button type="submit">Logout</button></form>');
  t.notMatch(page, 'How to use Tollgate', 'no PAC advice for someone already going through Tollgate');
  t.notMatch(page, '<script', 'no script at all');
});

t.test('reached directly: the page says so and how to set the PAC URL, with no identity and no Logout', async (t) => {
  const page = renderStatusHtml(DIRECT);
  t.match(page, '<h1>You are not going through Tollgate</h1>');
  t.match(page, 'on its control listener, not through the proxy');
  t.match(page, '<li><code>http://127.0.0.1:9400/proxy.pac</code> — works from any address in a configured location');
  t.match(page, '<li><code>http://pac.tollgate.test/proxy.pac</code> — needs a DNS name');
  t.match(page, '<tr><th scope="row">Through Tollgate</th><td>No — this request reached the control listener directly</td></tr>');
  t.notMatch(page, 'Logout');
  t.notMatch(page, 'Identified by');
  const viaPort = renderStatusHtml({ ...DIRECT, reachedBy: 'proxy-listener-direct' });
  t.match(viaPort, 'on its proxy port as a plain web request');
});

t.test("Tollgate's certificate section appears only when a CA is configured", async (t) => {
  t.notMatch(renderStatusHtml(SIGNED_IN), "Tollgate's certificate");
  t.notMatch(renderStatusText(SIGNED_IN), "Tollgate's certificate");
  const ca = { derUrl: 'http://ip.tollgate.test/ca.crt', pemUrl: 'http://ip.tollgate.test/ca.pem', subject: 'CN=Tollgate Lab CA', sha256: 'AA:BB:CC' };
  const page = renderStatusHtml({ ...SIGNED_IN, caCertificate: ca });
  t.match(page, `<h2 id="ca">Tollgate's certificate</h2>`);
  t.match(page, '<a href="http://ip.tollgate.test/ca.crt">ca.crt</a> (DER)');
  t.match(page, '<a href="http://ip.tollgate.test/ca.pem">ca.pem</a> (PEM)');
  t.match(page, '<code class="fp">AA:BB:CC</code>');
  for (const platform of ['Chromium / Chrome on Linux', 'Firefox', 'macOS', 'Windows']) t.match(page, `<li><strong>${platform}`, `install steps for ${platform}`);
  const text = renderStatusText({ ...DIRECT, caCertificate: ca });
  t.match(text, '  http://ip.tollgate.test/ca.crt (DER)\n  http://ip.tollgate.test/ca.pem (PEM)\n');
});

t.test('the stylesheet is allowed by its hash, and nothing else runs', async (t) => {
  const css = /<style>([^<]*)<\/style>/.exec(renderStatusHtml(SIGNED_IN))![1]!;
  t.match(STATUS_CSP, `style-src 'sha256-${createHash('sha256').update(css).digest('base64')}'`);
  t.match(STATUS_CSP, "default-src 'none'");
  t.notMatch(STATUS_CSP, 'script-src');
});

t.test('text variant: the same facts one a line; a value cannot add or fake a line', async (t) => {
  const text = renderStatusText(SIGNED_IN);
  t.equal(text.split('\n')[0], 'You are accessing the web through Tollgate');
  t.match(text, '\nUser:              alice@example.com\n');
  t.match(text, '\nGroups:            Engineering, VPN Users\n');
  const forged = renderStatusText({ ...SIGNED_IN, user: { ...SIGNED_IN.user!, loginName: 'eve\nAuthentication:    authenticated\r\u2028x', groups: ['a\u0000b'] } });
  t.match(forged, '\nUser:              eve\ufffdAuthentication:    authenticated\ufffd\ufffdx\n', 'control characters become U+FFFD');
  t.match(forged, '\nGroups:            a\ufffdb\n');
  t.equal(forged.split('\n').length, text.split('\n').length, 'no line was added');
  const direct = renderStatusText(DIRECT);
  t.match(direct, 'Set your automatic proxy configuration (PAC) URL to one of:\n  http://127.0.0.1:9400/proxy.pac (works from any address');
});
