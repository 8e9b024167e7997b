import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startOrigin } from '../helpers/origin.js';
import { startTestTollgate, testConfig, viaProxy, rawExchange } from '../helpers/tollgate.js';

const closed = net.createServer();
await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
const closedPort = (closed.address() as AddressInfo).port;
await new Promise<void>((r) => closed.close(() => r()));

const origin = await startOrigin();
const tg = await startTestTollgate((dir) =>
  testConfig(dir, { limits: { upstreamTimeoutMs: 400, upstreamIdleTimeoutMs: 60_000, maxConnectionsPerIp: 3, maxHeaderBytes: 4096, headersTimeoutMs: 1000 } }),
);
t.teardown(async () => {
  await tg.close();
  await origin.close();
});

t.test('upstream failures get a clear page with the reason', async (t) => {
  const cases: [string, number, string][] = [
    ['http://no-such-host.invalid/', 502, 'dns_failure'],
    [`http://127.0.0.1:${closedPort}/`, 502, 'connection_refused'],
    [`${origin.url}/slow?ms=3000`, 504, 'upstream_timeout'],
    [`${origin.url}/reset`, 502, 'connection_reset'],
  ];
  for (const [url, status, code] of cases) {
    const r = await viaProxy(tg.proxyPort, url, { headers: { accept: 'text/html' } });
    t.equal(r.status, status, url);
    t.equal(r.headers['x-tollgate-error'], code, url);
    t.match(r.body, /<h1>\d{3} /, 'an HTML page for browsers');
    t.notMatch(r.body, /ECONN|ENOTFOUND|at .*\.ts/, 'no raw errno or stack');
    const e = await tg.waitForEntry((e) => e.url === url);
    t.equal(e.status, status);
    t.equal(e.action, 'error');
    t.equal(e.reason, code);
  }
  const j = await viaProxy(tg.proxyPort, `http://127.0.0.1:${closedPort}/`, { headers: { accept: 'application/json' } });
  t.same(JSON.parse(j.body), { error: { status: 502, code: 'connection_refused', message: 'The server refused the connection.' } });
});

t.test('malformed requests get 400/431 and the proxy keeps serving', async (t) => {
  const garbage = await rawExchange(tg.proxyPort, 'THIS IS NOT HTTP\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 /);
  const badHeader = await rawExchange(tg.proxyPort, `GET ${origin.url}/hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n`);
  t.match(badHeader, /^HTTP\/1\.1 400 /);
  const huge = await rawExchange(tg.proxyPort, `GET ${origin.url}/hello HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
  t.match(huge, /^HTTP\/1\.1 431 /);
  const badUrl = await rawExchange(tg.proxyPort, `GET http://[zz/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  t.match(badUrl, /^HTTP\/1\.1 400 /);
  const cl = await rawExchange(tg.proxyPort, `POST ${origin.url}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello`);
  t.match(cl, /^HTTP\/1\.1 400 /, 'conflicting Content-Length (smuggling) is refused');
  const slow = await rawExchange(tg.proxyPort, `GET ${origin.url}/hello HTTP/1.1\r\nHost: x\r\n`, 8000);
  t.match(slow, /^HTTP\/1\.1 408 /, 'a request head that never completes times out');
  const ok = await viaProxy(tg.proxyPort, `${origin.url}/hello`);
  t.equal(ok.status, 200, 'still serving');
});

t.test('a client abort aborts the upstream request', async (t) => {
  const before = origin.aborted.filter((p) => p === '/hang-body').length;
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: tg.proxyPort, path: `${origin.url}/hang-body`, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => reject(new Error('no partial body')), 3000);
  });
  const deadline = Date.now() + 3000;
  while (origin.aborted.filter((p) => p === '/hang-body').length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(origin.aborted.filter((p) => p === '/hang-body').length, before + 1, 'the origin saw its response cut off');
});

t.test('connections per client IP are capped', async (t) => {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect({ host: '127.0.0.1', port: tg.proxyPort, localAddress: '127.0.0.30' });
    await new Promise((r) => s.once('connect', r));
    sockets.push(s);
  }
  const seenBefore = origin.seen.length;
  const fourth = await rawExchange(tg.proxyPort, `GET ${origin.url}/hello?capped HTTP/1.1\r\nHost: x\r\n\r\n`, 3000, '127.0.0.30');
  t.match(fourth, /^HTTP\/1\.1 429 /);
  t.equal(origin.seen.length, seenBefore, 'the capped connection\'s request is not forwarded');
  const other = await viaProxy(tg.proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.31' });
  t.equal(other.status, 200, 'another address is not affected');
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const again = await viaProxy(tg.proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.30' });
  t.equal(again.status, 200, 'the cap frees up when connections close');
});
