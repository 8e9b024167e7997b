import t from 'tap';
import http from 'node:http';
import { randomBytes, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { startOrigin } from '../helpers/origin.js';
import { startTestTollgate, testConfig, viaProxy, rawExchange } from '../helpers/tollgate.js';

const origin = await startOrigin();
const tg = await startTestTollgate((dir) =>
  testConfig(dir, {
    locations: [
      {
        name: 'lab',
        ips: ['127.0.0.0/26', '127.0.0.128/25', '::1'],
        trustedForwarders: ['127.0.0.10'],
        sublocations: [{ name: 'guest', ips: ['127.0.0.192/26'] }],
      },
    ],
  }),
);
t.teardown(async () => {
  await tg.close();
  await origin.close();
});

t.test('GET is forwarded with hop-by-hop headers removed and Via added', async (t) => {
  const r = await viaProxy(tg.proxyPort, `${origin.url}/hello`, {
    headers: {
      'proxy-authorization': 'Basic c2VjcmV0',
      'proxy-connection': 'keep-alive',
      connection: 'keep-alive, x-client-hop',
      'x-client-hop': 'drop me',
      'x-keep': 'kept',
      te: 'trailers',
    },
  });
  t.equal(r.status, 200);
  t.equal(r.body, 'hello world\n');
  const seen = origin.seen.at(-1)!;
  t.equal(seen.url, '/hello', 'origin sees origin-form');
  t.equal(seen.headers.host, `127.0.0.1:${origin.port}`, 'Host is the URL authority');
  t.equal(seen.headers['proxy-authorization'], undefined);
  t.equal(seen.headers['proxy-connection'], undefined);
  t.equal(seen.headers['x-client-hop'], undefined, 'headers named in Connection are dropped');
  t.equal(seen.headers.te, undefined);
  t.equal(seen.headers['x-keep'], 'kept');
  t.equal(seen.headers.via, '1.1 tollgate-test-node');
  t.equal(r.headers['x-origin'], 'yes');
  t.equal(r.headers['x-hop'], undefined, 'response header named in Connection is dropped');
  t.not(r.headers['keep-alive'], 'timeout=5', "the origin's Keep-Alive is not passed on (Node adds the proxy's own)");
  t.same(r.headers['set-cookie'], ['a=1', 'b=2'], 'multiple Set-Cookie survive');
  t.equal(r.headers.via, '1.1 tollgate-test-node');
});

t.test('POST streams a large body both ways, with and without chunking', async (t) => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const digest = createHash('sha256').update(body).digest('hex');
  const fixed = await new Promise<{ status: number; digest: string; te: string; received: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: tg.proxyPort, method: 'POST', path: `${origin.url}/echo`, headers: { 'content-length': String(body.length) }, agent: false }, (res) => {
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve({ status: res.statusCode!, digest: h.digest('hex'), te: String(res.headers['x-te']), received: String(res.headers['x-received']) }));
    });
    req.on('error', reject);
    // Written in pieces: the proxy must pass them on as they come.
    Readable.from((function* () { for (let i = 0; i < body.length; i += 65536) yield body.subarray(i, i + 65536); })()).pipe(req);
  });
  t.equal(fixed.status, 200);
  t.equal(fixed.received, String(body.length));
  t.equal(fixed.digest, digest, 'echoed body is intact');
  t.equal(fixed.te, '', 'content-length upload stays unchunked');

  const chunked = await new Promise<{ digest: string; te: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: tg.proxyPort, method: 'POST', path: `${origin.url}/echo`, agent: false }, (res) => {
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve({ digest: h.digest('hex'), te: String(res.headers['x-te']) }));
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 100_000) req.write(body.subarray(i, i + 100_000));
    req.end();
  });
  t.equal(chunked.te, 'chunked', 'chunked upload reaches the origin chunked');
  t.equal(chunked.digest, digest);
});

t.test('chunked response, HEAD and 304', async (t) => {
  const c = await viaProxy(tg.proxyPort, `${origin.url}/chunked`);
  t.equal(c.body, 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
  t.equal(c.headers['transfer-encoding'], 'chunked');

  const h = await viaProxy(tg.proxyPort, `${origin.url}/etag`, { method: 'HEAD' });
  t.equal(h.status, 200);
  t.equal(h.headers['content-length'], '6');
  t.equal(h.body, '');

  const n = await viaProxy(tg.proxyPort, `${origin.url}/etag`, { headers: { 'if-none-match': '"v1"' } });
  t.equal(n.status, 304);
  t.equal(n.body, '');
  t.equal(n.headers.etag, '"v1"');
});

t.test('keep-alive: many requests share one client connection', async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 20; i++) {
    const r = await viaProxy(tg.proxyPort, `${origin.url}/hello`, { agent });
    t.equal(r.status, 200);
  }
  t.equal(Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length, 1);
  agent.destroy();
});

t.test('a source in no location gets 403 naming its address', async (t) => {
  const r = await viaProxy(tg.proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.66' });
  t.equal(r.status, 403);
  t.equal(r.headers['x-tollgate-error'], 'unknown_source');
  t.match(r.body, '127.0.0.66');
  const e = await tg.waitForEntry((e) => e.clientIp === '127.0.0.66');
  t.equal(e.action, 'blocked');
  t.equal(e.reason, 'unknown_source');
  t.equal(e.location, '');
  const connect = await rawExchange(tg.proxyPort, `CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n`, 3000, '127.0.0.66');
  t.match(connect, /^HTTP\/1\.1 403 /);
});

t.test('X-Forwarded-For is believed only from trusted forwarders', async (t) => {
  await viaProxy(tg.proxyPort, `${origin.url}/hello?xff=trusted`, { localAddress: '127.0.0.10', headers: { 'x-forwarded-for': '203.0.113.9, 127.0.0.200' } });
  const a = await tg.waitForEntry((e) => e.url.endsWith('xff=trusted'));
  t.equal(a.clientIp, '127.0.0.200', 'right-most untrusted hop');
  t.equal(a.sublocation, 'guest');

  await viaProxy(tg.proxyPort, `${origin.url}/hello?xff=untrusted`, { localAddress: '127.0.0.11', headers: { 'x-forwarded-for': '127.0.0.200' } });
  const b = await tg.waitForEntry((e) => e.url.endsWith('xff=untrusted'));
  t.equal(b.clientIp, '127.0.0.11', 'XFF from an untrusted peer is ignored');
  t.equal(b.sublocation, '');

  const c = await viaProxy(tg.proxyPort, `${origin.url}/hello?xff=unknown`, { localAddress: '127.0.0.10', headers: { 'x-forwarded-for': '127.0.0.66' } });
  t.equal(c.status, 403, 'a trusted forwarder cannot launder an unknown client');

  await viaProxy(tg.proxyPort, `${origin.url}/hello?xff=garbage`, { localAddress: '127.0.0.10', headers: { 'x-forwarded-for': 'not-an-ip' } });
  const d = await tg.waitForEntry((e) => e.url.endsWith('xff=garbage'));
  t.equal(d.clientIp, '127.0.0.10', 'a malformed hop falls back to the peer');
});

t.test('own hosts are answered by Tollgate, not forwarded', async (t) => {
  const before = origin.seen.length;
  const r = await viaProxy(tg.proxyPort, 'http://ip.tollgate.test/', { localAddress: '127.0.0.200', headers: { accept: 'text/html' } });
  t.equal(r.status, 200);
  t.match(r.body, '127.0.0.200');
  t.match(r.body, 'lab');
  t.match(r.body, 'guest');
  t.match(r.body, 'test-node');
  t.match(r.body, 'tollgate.test');
  const j = await viaProxy(tg.proxyPort, 'http://ip.tollgate.test/?format=json', { localAddress: '127.0.0.5' });
  t.match(JSON.parse(j.body), { cloud: 'tollgate.test', node: 'test-node', clientIp: '127.0.0.5', viaProxy: true, location: 'lab', sublocation: null, enforceAuthentication: false, configVersion: 1, authenticated: false, identifiedBy: 'exempt', user: null, logoutCsrf: null });
  const nf = await viaProxy(tg.proxyPort, 'http://nothing.tollgate.test/x');
  t.equal(nf.status, 404);
  const origin_form = await rawExchange(tg.proxyPort, 'GET /?format=json HTTP/1.1\r\nHost: ip.tollgate.test\r\nConnection: close\r\n\r\n');
  t.match(origin_form, /^HTTP\/1\.1 200 /);
  t.match(origin_form, '"clientIp":"127.0.0.1"');
  t.match(origin_form, '"viaProxy":false', 'origin form straight to the proxy port is not a proxy request');
  t.equal(origin.seen.length, before, 'nothing reached the origin');
  const e = await tg.waitForEntry((e) => e.host === 'ip.tollgate.test');
  t.equal(e.action, 'own-host');
});

t.test('origin-form for a foreign host is not a proxy request', async (t) => {
  const r = await rawExchange(tg.proxyPort, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`);
  t.match(r, /^HTTP\/1\.1 400 /);
  t.match(r, 'not_a_proxy_request');
});

t.test('https:// in absolute form and credentials in URLs are refused', async (t) => {
  const a = await viaProxy(tg.proxyPort, `https://127.0.0.1:${origin.port}/`);
  t.equal(a.status, 400);
  t.equal(a.headers['x-tollgate-error'], 'unsupported_scheme');
  const b = await viaProxy(tg.proxyPort, `http://user:pw@127.0.0.1:${origin.port}/`);
  t.equal(b.status, 400);
});

t.test('access log: one line per transaction, all fields, no secrets', async (t) => {
  await viaProxy(tg.proxyPort, `${origin.url}/hello?log=1`, { headers: { cookie: 'session=hunter2', authorization: 'Bearer hunter3', 'proxy-authorization': 'Basic hunter4' } });
  const e = await tg.waitForEntry((e) => e.url.endsWith('log=1'));
  t.same(Object.keys(e).sort(), ['action', 'clientIp', 'department', 'durationMs', 'groups', 'host', 'location', 'login', 'method', 'node', 'protocol', 'reason', 'reqBytes', 'respBytes', 'status', 'sublocation', 'time', 'url'].sort());
  t.equal(e.status, 200);
  t.equal(e.action, 'allowed');
  t.equal(e.protocol, 'HTTP');
  t.equal(e.method, 'GET');
  t.equal(e.host, '127.0.0.1');
  t.equal(e.login, '');
  t.ok(e.reqBytes > 50 && e.respBytes > 50, `bytes counted (${e.reqBytes}/${e.respBytes})`);
  t.ok(e.durationMs >= 0);
  t.notMatch(tg.access.raw + tg.app.raw, /hunter[234]/);
});

t.test('metrics count requests by action and status', async (t) => {
  await new Promise((r) => http.get({ host: '127.0.0.1', port: tg.controlPort, path: '/readyz' }, (res) => res.resume().on('end', r)));
  const m = await new Promise<string>((resolve, reject) =>
    http.get({ host: '127.0.0.1', port: tg.controlPort, path: '/metrics' }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    }).on('error', reject),
  );
  t.match(m, /tollgate_requests_total\{action="allowed",status="200",protocol="HTTP"\} \d+/);
  t.match(m, /tollgate_requests_total\{action="blocked",status="403",protocol="HTTP"\} \d+/);
  t.match(m, /tollgate_active_connections \d+/);
  t.match(m, /tollgate_active_tunnels \d+/);
  t.match(m, /tollgate_lru_hit_ratio /);
  t.match(m, /tollgate_store_seconds_bucket/);
});
