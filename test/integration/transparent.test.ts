/**
 * transparent: the listeners for routed traffic, as the proxy sees it. curl `--connect-to` sends a
 * request for a site to Tollgate's transparent port, as routing or a REDIRECT would, and
 * `--interface 127.0.0.N` gives each client the source address that places it in a location.
 *
 *   curl --interface 127.0.0.2 --connect-to site:80:127.0.0.1:<transparentHttp> http://site/ -> Tollgate -> origin
 *   curl --connect-to secure.lab.test:443:127.0.0.1:<transparentTls> https://secure.lab.test/ -> SNI -> origin :443
 *
 * Locations: branch 127.0.0.2 and .5 (sign-in, IP surrogate), open 127.0.0.3 (no sign-in), inspected 127.0.0.4
 * (sign-in, surrogate, TLS inspection). The https origin listens on 127.0.0.143:443, where an SNI
 * name without a port must lead.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { createCa, writeCa } from '../../src/tls/ca.js';
import { BROWSER_UA, FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { originCa, startHttpsOrigin } from '../helpers/inspect.js';
import { startOrigin } from '../helpers/origin.js';
import { rawExchange, startTestTollgate, testConfig } from '../helpers/tollgate.js';

const CLOUD = 'tollgate.test';
const SITE = 'www.origin-a.test';
const SECURE = 'secure.lab.test';
const SECURE_ADDR = '127.0.0.143';

interface Curl {
  readonly exit: number;
  readonly status: number;
  readonly headers: string;
  readonly body: string;
  readonly stderr: string;
}

/** curl runs curl (never through a proxy) and splits what it printed into status, headers and body. */
function curl(args: string[]): Promise<Curl> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-i', '--max-time', '10', '--noproxy', '*', ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      const exit = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : -1;
      const end = stdout.indexOf('\r\n\r\n');
      const headers = end < 0 ? stdout : stdout.slice(0, end);
      resolve({ exit, status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headers)?.[1] ?? 0), headers, body: end < 0 ? '' : stdout.slice(end + 4), stderr });
    });
  });
}

const dir = t.testdir();
const ours = createCa({ keyType: 'p256', commonName: 'Tollgate transparent-test CA' });
await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, ours.certPem, ours.keyPem);
writeFileSync(join(dir, 'ours.pem'), ours.certPem);
const oca = await originCa('Transparent origin CA');
writeFileSync(join(dir, 'origin-ca.pem'), oca.certPem);

const origin = await startOrigin();
t.teardown(() => origin.close());
const secure = await startHttpsOrigin(await oca.leaf(SECURE), 'secure', { host: SECURE_ADDR, port: 443 });
t.teardown(() => secure.close());
const idp = await startLabIdpFixture({ id: 'lab' });
t.teardown(() => idp.close());

const tg = await startTestTollgate((dataDir) =>
  testConfig(dataDir, {
    listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0', transparentHttp: '127.0.0.1:0', transparentTls: '127.0.0.1:0' },
    locations: [
      { name: 'branch', ips: ['127.0.0.2/32', '127.0.0.5/32'], enforceAuthentication: true, surrogate: { enabled: true } },
      { name: 'open', ips: ['127.0.0.3/32'] },
      { name: 'inspected', ips: ['127.0.0.4/32'], enforceAuthentication: true, surrogate: { enabled: true }, inspection: 'on' },
    ],
    hosts: { [SITE]: '127.0.0.1', [SECURE]: SECURE_ADDR },
    idps: [idp.config()],
    inspection: { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), hosts: [{ match: [SECURE], upstreamCa: join(dir, 'origin-ca.pem') }] },
  }),
);
t.teardown(() => tg.close());

const site = `http://${SITE}:${origin.port}`;
/** toHttp sends SITE (and our own hosts, which need no DNS) to the transparent HTTP port, as a REDIRECT would. */
const toHttp = ['--connect-to', `${SITE}:${origin.port}:127.0.0.1:${tg.transparentHttpPort}`];
// --http1.1: the https origin offers h2 in ALPN but speaks only HTTP/1.1 (spliced, curl talks to it directly).
const toTls = ['--http1.1', '--connect-to', `${SECURE}:443:127.0.0.1:${tg.transparentTlsPort}`];
const browser = ['-H', `User-Agent: ${BROWSER_UA}`, '-H', 'Accept: text/html'];

/** signIn signs alice in from `from` as a routed browser: our own hosts through the transparent port, the IdP directly. */
async function signIn(from: string, startUrl: string): Promise<{ status: number; url: string }> {
  const client = new FlowClient(0, from, undefined, (u) => {
    if (u.hostname === SITE || u.hostname.endsWith(`.${CLOUD}`)) return { host: '127.0.0.1', port: tg.transparentHttpPort };
    return { host: u.hostname, port: Number(u.port) };
  });
  const end = await client.signIn(startUrl, 'alice@example.com', 'alice-pw');
  return { status: end.reply.status, url: end.url };
}

t.test('HTTP by Host: a page load at an enforcing location is sent to sign in, and passes after a surrogate sign-in', async (t) => {
  const first = await curl(['--interface', '127.0.0.2', ...toHttp, ...browser, `${site}/hello`]);
  t.equal(first.status, 307, first.stderr);
  t.match(first.headers, new RegExp(`\\r\\nlocation: http://gateway\\.${CLOUD.replace('.', '\\.')}/login\\?r=`, 'i'), 'to the gateway');
  const e = await tg.waitForEntry((x) => x.url === `${site}/hello` && x.status === 307);
  t.match(e, { forwardingMethod: 'transparent', action: 'auth-redirect', location: 'branch', clientIp: '127.0.0.2', protocol: 'HTTP' });

  const signed = await signIn('127.0.0.2', `${site}/hello`);
  t.equal(signed.status, 200, 'the sign-in ended on the page');
  t.equal(signed.url, `${site}/hello`);

  // Another client on the same address (curl, no cookies) is now the signed-in user: the surrogate.
  const after = await curl(['--interface', '127.0.0.2', ...toHttp, `${site}/hello?after`]);
  t.equal(after.status, 200, after.stderr);
  t.equal(after.body, 'hello world\n');
  const ok = await tg.waitForEntry((x) => x.url === `${site}/hello?after`);
  t.match(ok, { login: 'alice@example.com', action: 'allowed', forwardingMethod: 'transparent', status: 200 });
  t.notOk('decrypted' in ok, 'a plain HTTP line has no TLS fields');
  t.ok(origin.seen.every((s) => !String(s.headers.cookie ?? '').includes('tollgate')), 'no cookie of ours upstream');
});

t.test('HTTP: an open location passes, bad Host and CONNECT are refused, a loop to ourselves is refused', async (t) => {
  const open = await curl(['--interface', '127.0.0.3', ...toHttp, `${site}/hello?open`]);
  t.equal(open.status, 200);
  t.match(await tg.waitForEntry((x) => x.url === `${site}/hello?open`), { login: '', location: 'open', forwardingMethod: 'transparent' });

  // An unknown source is refused, as on the explicit listener.
  const unknown = await curl(['--interface', '127.0.0.9', ...toHttp, `${site}/x`]);
  t.equal(unknown.status, 403);
  t.match(unknown.headers, /x-tollgate-error: unknown_source/i);

  const port = tg.transparentHttpPort;
  const noHost10 = await rawExchange(port, 'GET / HTTP/1.0\r\n\r\n', 3000, '127.0.0.3');
  t.match(noHost10, /^HTTP\/1\.1 400 /, 'HTTP/1.0 without Host: 400');
  t.match(noHost10, /x-tollgate-error: missing_host/i);
  const noHost11 = await rawExchange(port, 'GET / HTTP/1.1\r\n\r\n', 3000, '127.0.0.3');
  t.match(noHost11, /^HTTP\/1\.1 400 /, 'HTTP/1.1 without Host: 400');
  const badHost = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: exa mple.test:99999\r\n\r\n', 3000, '127.0.0.3');
  t.match(badHost, /^HTTP\/1\.1 400 /, 'malformed Host: 400');
  const connect = await rawExchange(port, `CONNECT ${SECURE}:443 HTTP/1.1\r\nHost: ${SECURE}:443\r\n\r\n`, 3000, '127.0.0.3');
  t.match(connect, /^HTTP\/1\.1 405 /, 'CONNECT is for the proxy port');
  t.match(connect, /x-tollgate-error: connect_not_here/i);

  // Host naming the transparent listener itself: the same self guard as explicit traffic.
  const loop = await rawExchange(port, `GET /loop HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 3000, '127.0.0.3');
  t.match(loop, /^HTTP\/1\.1 (403|508) /, 'a request to ourselves is refused');
  t.match(loop, /x-tollgate-error: (loop_detected|self_destination|own_listener)/i);
});

t.test('TLS by SNI: spliced to SNI:443 for a location that does not inspect', async (t) => {
  const r = await curl(['--interface', '127.0.0.3', ...toTls, '--cacert', join(dir, 'origin-ca.pem'), `https://${SECURE}/spliced`]);
  t.equal(r.exit, 0, r.stderr);
  t.equal(r.status, 200);
  t.equal(JSON.parse(r.body).label, 'secure', "the origin's own answer, over its own certificate");
  const e = await tg.waitForEntry((x) => x.protocol === 'SSL' && x.sni === SECURE && x.location === 'open');
  t.match(e, { method: 'CONNECT', url: `${SECURE}:443`, host: SECURE, forwardingMethod: 'transparent', decrypted: false, status: 200, action: 'allowed' });
});

t.test('TLS by SNI at an enforcing location: closed until signed in (surrogate), then spliced', async (t) => {
  const args = ['--interface', '127.0.0.5', ...toTls, '--cacert', join(dir, 'origin-ca.pem')];
  // A TLS connection cannot be sent to a login page: without a surrogate it is closed.
  const before = await curl([...args, `https://${SECURE}/before`]);
  t.not(before.exit, 0, `no TLS without a sign-in (${before.stderr.trim()})`);
  t.match(await tg.waitForEntry((x) => x.clientIp === '127.0.0.5' && x.sni === SECURE), { reason: 'auth_required', action: 'blocked', forwardingMethod: 'transparent' });
  t.equal(secure.seen.filter((s) => s.url === '/before').length, 0, 'nothing reached the origin');

  const signed = await signIn('127.0.0.5', `${site}/hello?start`);
  t.equal(signed.status, 200);
  const after = await curl([...args, `https://${SECURE}/after-signin`]);
  t.equal(after.status, 200, after.stderr);
  t.match(await tg.waitForEntry((x) => x.clientIp === '127.0.0.5' && x.sni === SECURE && x.action === 'allowed'), { login: 'alice@example.com', decrypted: false });
});

t.test('TLS by SNI, inspected: a page load inside TLS is sent to sign in, then served over verified TLS', async (t) => {
  const args = ['--interface', '127.0.0.4', ...toTls, '--cacert', join(dir, 'ours.pem')];
  const first = await curl([...args, ...browser, `https://${SECURE}/inside`]);
  t.equal(first.exit, 0, first.stderr);
  t.equal(first.status, 307, 'redirected from inside TLS');
  t.match(first.headers, /\r\nlocation: http:\/\/gateway\.tollgate\.test\/login\?r=/i);
  const e = await tg.waitForEntry((x) => x.url === `https://${SECURE}/inside` && x.status === 307);
  t.match(e, { decrypted: true, protocol: 'SSL', sni: SECURE, forwardingMethod: 'transparent', location: 'inspected' });

  const signed = await signIn('127.0.0.4', `${site}/hello?start`);
  t.equal(signed.status, 200);
  const after = await curl([...args, `https://${SECURE}/after`]);
  t.equal(after.status, 200, after.stderr);
  t.equal(JSON.parse(after.body).label, 'secure');
  const ok = await tg.waitForEntry((x) => x.url === `https://${SECURE}/after`);
  t.match(ok, { login: 'alice@example.com', decrypted: true, forwardingMethod: 'transparent', status: 200 });
  t.equal(secure.seen.at(-1)!.servername, SECURE, 'SNI upstream');
});

t.test('TLS without SNI, and bytes that are not TLS: closed with a log line and an access-log line', async (t) => {
  const port = tg.transparentTlsPort;
  // Node sends no SNI when it connects to an IP literal.
  const closed = await new Promise<string>((resolve) => {
    const s = tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }), rejectUnauthorized: false });
    s.once('secureConnect', () => resolve('handshake completed'));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.once('close', () => resolve('closed'));
  });
  t.not(closed, 'handshake completed', `no handshake (${closed})`);
  const plain = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 3000, '127.0.0.3');
  t.equal(plain, '', 'not TLS: closed without a word');
  const lines = tg.app.lines.map((l) => String(l.msg));
  t.ok(lines.includes('transparent TLS: no SNI in the ClientHello, closed'), 'no SNI logged');
  t.ok(lines.includes('transparent TLS: not TLS, closed'), 'not TLS logged');
  t.match(await tg.waitForEntry((x) => x.reason === 'no_sni'), { action: 'blocked', forwardingMethod: 'transparent', clientIp: '127.0.0.3' });
  t.match(await tg.waitForEntry((x) => x.reason === 'not_tls'), { action: 'blocked', forwardingMethod: 'transparent' });
  const metrics = await (await fetch(`http://127.0.0.1:${tg.controlPort}/metrics`, { headers: tg.admin })).text();
  t.match(metrics, /tollgate_transparent_closed_total\{reason="no_sni"\} 1\b/);
  t.match(metrics, /tollgate_transparent_closed_total\{reason="not_tls"\} 1\b/);
  // The listener still serves.
  const again = await curl(['--interface', '127.0.0.3', ...toTls, '--cacert', join(dir, 'origin-ca.pem'), `https://${SECURE}/again`]);
  t.equal(again.status, 200);
});

t.test('limits: an oversized header is refused on the transparent HTTP port, as on the proxy port', async (t) => {
  const big = 'x'.repeat(70 * 1024);
  const r = await rawExchange(tg.transparentHttpPort, `GET / HTTP/1.1\r\nHost: ${SITE}\r\nX-Big: ${big}\r\n\r\n`, 3000, '127.0.0.3');
  t.match(r, /^HTTP\/1\.1 431 /);
});


t.test('limits: the per-address connection cap counts every door, and a slow ClientHello times out', async (t) => {
  const capped = await startTestTollgate((dataDir) =>
    testConfig(dataDir, {
      listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0', transparentHttp: '127.0.0.1:0', transparentTls: '127.0.0.1:0' },
      locations: [{ name: 'open', ips: ['127.0.0.3/32'] }],
      limits: { maxConnectionsPerIp: 2, headersTimeoutMs: 1000 },
    }),
  );
  t.teardown(() => capped.close());
  const open = (port: number) =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }, () => resolve(s));
      s.once('error', reject);
    });
  const closedWith = (s: net.Socket) =>
    new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      s.on('error', () => {});
      s.once('close', () => resolve(got));
    });
  // Two connections held open: one on each transparent port.
  const a = await open(capped.transparentHttpPort);
  const b = await open(capped.transparentTlsPort);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  // A third, on either door, is over the cap: HTTP is told so, TLS (which never spoke HTTP) is closed.
  const third = await open(capped.transparentHttpPort);
  t.match(await closedWith(third), /^HTTP\/1\.1 429 /, 'HTTP: 429 over the cap');
  const fourth = await open(capped.transparentTlsPort);
  t.equal(await closedWith(fourth), '', 'TLS: closed over the cap');
  // The held TLS connection sends no ClientHello: it is closed after the header timeout, and logged.
  t.equal(await closedWith(b), '', 'no ClientHello in time: closed');
  t.match(await capped.waitForEntry((e) => e.reason === 'hello_timeout'), { action: 'blocked', forwardingMethod: 'transparent', clientIp: '127.0.0.3' });
});
