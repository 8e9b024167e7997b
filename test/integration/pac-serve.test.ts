/**
 * PAC downloads from a real Tollgate: on the control listener, on pac.<cloud> through the proxy,
 * and as origin-form requests sent straight to the proxy listener; and activations that a PAC
 * problem blocks.
 *
 *   client -> control listener  GET /proxy.pac | /wpad.dat | /<location>.pac
 *   client -> proxy listener    GET http://pac.tollgate.test/<name>.pac   (absolute form)
 *   client -> proxy listener    GET /proxy.pac  Host: 127.0.0.1:<port>    (origin form)
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTollgate } from '../../src/main.js';
import { PAC_CONTENT_TYPE } from '../../src/pac/files.js';
import { LogSink, rawExchange, viaProxy } from '../helpers/tollgate.js';
import http from 'node:http';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-pac-serve-'));
const file = join(dir, 'tollgate.yaml');
const customPac = join(dir, 'custom.pac');
const config = (pac: string) => `
listeners: { proxy: 127.0.0.1:0, control: 127.0.0.1:0 }
store: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }
nodeName: pac-node
locations:
  - { name: HQ, ips: [127.0.0.1/32, 127.0.0.3/32] }
  - { name: Branch Office, ips: [127.0.0.2/32] }
pac:
${pac}`;
const GOOD = `  gateways: [gw-1.example.net:9400, gw-2.example.net:9400]
  locations: [{ name: Branch Office, gateways: [branch.example.net:3128] }]
  bypass: [intranet.example.com]`;
writeFileSync(file, config(GOOD));

const access = new LogSink();
const app = new LogSink();
const tg = await startTollgate({ configPath: file, accessLog: access, appLog: app });
t.teardown(async () => {
  await tg.shutdown();
  rmSync(dir, { recursive: true, force: true });
});
const proxyPort = tg.proxyAddress.port;
const controlPort = tg.controlAddress.port;

/** get sends a GET to the control listener from a chosen loopback address. */
function get(path: string, localAddress = '127.0.0.1', method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: controlPort, path, method, localAddress, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function proxies(pacText: string): string {
  return /var proxies = "([^"]*)"/.exec(pacText)?.[1] ?? '(none)';
}

t.test('the control listener serves /proxy.pac, /wpad.dat and /<location>.pac, uncached', async (t) => {
  const cases: [string, string, string][] = [
    // path, client address, gateways in the PAC
    ['/proxy.pac', '127.0.0.1', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['/wpad.dat', '127.0.0.1', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['/proxy.pac', '127.0.0.2', 'PROXY branch.example.net:3128'],
    ['/wpad.dat', '127.0.0.2', 'PROXY branch.example.net:3128'],
    ['/Branch%20Office.pac', '127.0.0.1', 'PROXY branch.example.net:3128'],
    ['/branch%20office.pac?x=1', '127.0.0.1', 'PROXY branch.example.net:3128'],
    ['/HQ.pac', '127.0.0.2', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['/nobody.pac', '127.0.0.2', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['/proxy.pac', '127.0.0.66', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
  ];
  for (const [path, from, want] of cases) {
    const r = await get(path, from);
    t.equal(r.status, 200, `${path} from ${from}`);
    t.equal(r.headers['content-type'], PAC_CONTENT_TYPE);
    t.equal(r.headers['cache-control'], 'no-cache');
    t.equal(proxies(r.body), want, `${path} from ${from}`);
    t.match(r.body, 'if (shExpMatch(host, "intranet.example.com")) return "DIRECT";');
  }
  const head = await get('/proxy.pac', '127.0.0.1', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  const post = await get('/proxy.pac', '127.0.0.1', 'POST');
  t.equal(post.status, 405);
});

t.test('pac.<cloud> through the proxy: every name is a PAC file, an unknown one the default', async (t) => {
  const cases: [string, string, string][] = [
    ['http://pac.tollgate.test/proxy.pac', '127.0.0.1', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['http://pac.tollgate.test/wpad.dat', '127.0.0.2', 'PROXY branch.example.net:3128'],
    ['http://pac.tollgate.test/Branch%20Office.pac', '127.0.0.1', 'PROXY branch.example.net:3128'],
    ['http://pac.tollgate.test/1/other.pac', '127.0.0.2', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['http://pac.tollgate.test/', '127.0.0.2', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
  ];
  for (const [url, from, want] of cases) {
    const r = await viaProxy(proxyPort, url, { localAddress: from });
    t.equal(r.status, 200, url);
    t.equal(r.headers['content-type'], PAC_CONTENT_TYPE);
    t.equal(r.headers['cache-control'], 'no-cache');
    t.equal(proxies(r.body), want, `${url} from ${from}`);
  }
});

t.test('the proxy listener answers an origin-form PAC download from a known location; unknown sources get 403', async (t) => {
  const ask = (path: string, from: string) => rawExchange(proxyPort, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${proxyPort}\r\nConnection: close\r\n\r\n`, 3000, from);
  for (const [path, from, want] of [
    ['/proxy.pac', '127.0.0.1', 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400'],
    ['/wpad.dat', '127.0.0.2', 'PROXY branch.example.net:3128'],
    ['/Branch%20Office.pac', '127.0.0.3', 'PROXY branch.example.net:3128'],
  ] as const) {
    const r = await ask(path, from);
    t.match(r, /^HTTP\/1\.1 200 /, `${path} from ${from}`);
    t.match(r, `content-type: ${PAC_CONTENT_TYPE}`);
    t.match(r, 'cache-control: no-cache');
    t.equal(proxies(r), want);
  }
  const stranger = await ask('/proxy.pac', '127.0.0.66');
  t.match(stranger, /^HTTP\/1\.1 403 /, 'a source in no location is refused');
  t.match(stranger, 'x-tollgate-error: unknown_source');
  const other = await ask('/status', '127.0.0.1');
  t.match(other, /^HTTP\/1\.1 400 /, 'other origin-form paths are still refused: this is a proxy');
  const logged = access.lines.filter((l) => l.host === 'pac.tollgate.test' && String(l.url).startsWith('http://127.0.0.1:'));
  t.same(
    logged.map((l) => `${String(l.clientIp)} ${String(l.status)} ${String(l.action)}`).slice(-4),
    ['127.0.0.1 200 own-host', '127.0.0.2 200 own-host', '127.0.0.3 200 own-host', '127.0.0.66 403 blocked'],
    'each download is in the access log',
  );
});

t.test('an activation with a value that could inject script is refused, and the old PAC keeps serving', async (t) => {
  writeFileSync(file, config(`  gateways: ['gw-1.example.net:9400"; return "DIRECT']\n  bypass: ['a.example"); return ("DIRECT']`));
  const r = await tg.activate();
  t.equal(r.ok, false);
  if (!r.ok) {
    t.match(r.errors.join('\n'), /pac\.gateways\[0\]: .* is not host:port/);
    t.match(r.errors.join('\n'), /pac\.bypass\[0\]: .* is not a host, \*\.domain, \.domain, IPv4 address or IPv4 CIDR/);
  }
  t.equal(proxies((await get('/proxy.pac')).body), 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400');
});

t.test('a custom PAC that throws blocks the activation with the reason; a good one is served with ${SRCIP} per client', async (t) => {
  writeFileSync(customPac, 'function FindProxyForURL(url, host) { if (host == "www.example.com") null.x; return "PROXY ${GATEWAY}:9400"; }');
  writeFileSync(file, config(`${GOOD}\n  file: custom.pac`));
  const bad = await tg.activate();
  t.equal(bad.ok, false);
  if (!bad.ok) t.match(bad.errors.join('\n'), /pac \(default PAC, custom\.pac\): FindProxyForURL\("http:\/\/www\.example\.com\/", "www\.example\.com"\) threw: TypeError/);
  t.ok(app.lines.some((l) => l.msg === 'activation failed; the previous config keeps running'));
  t.equal(proxies((await get('/proxy.pac')).body), 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400', 'the generated PAC still serves');

  writeFileSync(customPac, 'function FindProxyForURL(url, host) {\n  var me = "${SRCIP}";\n  return "PROXY ${GATEWAY}:9400; PROXY ${SECONDARY_GATEWAY}:9400";\n}\n');
  const good = await tg.activate();
  t.equal(good.ok, true);
  const a = await get('/proxy.pac', '127.0.0.1');
  t.match(a.body, 'var me = "127.0.0.1";');
  t.match(a.body, 'return "PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400";');
  const b = await get('/proxy.pac', '127.0.0.3');
  t.match(b.body, 'var me = "127.0.0.3";', '${SRCIP} is each client its own');
  const c = await viaProxy(proxyPort, 'http://pac.tollgate.test/proxy.pac', { localAddress: '127.0.0.2' });
  t.match(c.body, 'var me = "127.0.0.2";');
  t.match(c.body, 'return "PROXY branch.example.net:9400; PROXY branch.example.net:9400";', "the branch location's gateways");
});

t.test('an activation reports PAC and IdP file problems together', async (t) => {
  writeFileSync(customPac, 'function FindProxyForURL(url, host) { return 1; }');
  writeFileSync(
    file,
    config(`${GOOD}\n  file: custom.pac`) +
      `\nidps: [{ id: lab, name: Lab, ssoUrl: "http://idp.example/sso", certificate: missing.pem, entityId: lab, default: true }]\n`,
  );
  const r = await tg.activate();
  t.equal(r.ok, false);
  if (!r.ok) {
    t.match(r.errors.join('\n'), /idps\[0\]\.certificate: cannot read missing\.pem/);
    t.match(r.errors.join('\n'), /pac \(default PAC, custom\.pac\): FindProxyForURL for .* returned number, not a string/);
  }
});
