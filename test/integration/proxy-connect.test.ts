import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startOrigin } from '../helpers/origin.js';
import { selfSigned } from '../helpers/tls.js';
import { startTestTollgate, testConfig, connectVia, rawExchange, viaProxy } from '../helpers/tollgate.js';

const { key, cert } = selfSigned(['origin.test'], ['127.0.0.1']);
const tlsOrigin = https.createServer({ key, cert }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`secure hello ${req.url}\n`);
});
await new Promise<void>((r) => tlsOrigin.listen(0, '127.0.0.1', r));
const tlsPort = (tlsOrigin.address() as AddressInfo).port;

// A raw TCP origin that tests half-close: it reads until the client's FIN, then answers.
const halfClose = net.createServer({ allowHalfOpen: true }, (s) => {
  const h = createHash('sha256');
  let n = 0;
  s.on('data', (c) => {
    n += c.length;
    h.update(c);
  });
  s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
});
await new Promise<void>((r) => halfClose.listen(0, '127.0.0.1', r));
const halfPort = (halfClose.address() as AddressInfo).port;

// A port with nothing listening, for the refused case.
const closed = net.createServer();
await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
const closedPort = (closed.address() as AddressInfo).port;
await new Promise<void>((r) => closed.close(() => r()));

const origin = await startOrigin();
const tg = await startTestTollgate((dir) => testConfig(dir, { connectPorts: [443, tlsPort, halfPort, closedPort], hosts: { 'origin.test': '127.0.0.1' } }));
t.teardown(async () => {
  await tg.close();
  await origin.close();
  tlsOrigin.close();
  halfClose.close();
});

t.test('CONNECT to a TLS origin: the certificate is the origin\'s, checked against its CA', async (t) => {
  const { status, socket } = await connectVia(tg.proxyPort, `origin.test:${tlsPort}`);
  t.equal(status, 200);
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.request({ host: 'origin.test', port: tlsPort, path: '/tls', ca: cert, servername: 'origin.test', createConnection: () => tls.connect({ socket, ca: cert, servername: 'origin.test' }) }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(body, 'secure hello /tls\n');
  const e = await tg.waitForEntry((e) => e.protocol === 'TUNNEL' && e.url === `origin.test:${tlsPort}`);
  t.equal(e.status, 200);
  t.equal(e.action, 'allowed');
  t.equal(e.method, 'CONNECT');
  t.ok(e.reqBytes > 100 && e.respBytes > 500, `tunnel bytes counted (${e.reqBytes}/${e.respBytes})`);
});

t.test('CONNECT honours half-close: the client ends its side and still gets the answer', async (t) => {
  const { status, socket } = await connectVia(tg.proxyPort, `127.0.0.1:${halfPort}`);
  t.equal(status, 200);
  const data = randomBytes(2 * 1024 * 1024);
  const answer = new Promise<string>((resolve) => {
    let b = '';
    socket.on('data', (c: Buffer) => (b += c.toString()));
    socket.on('end', () => resolve(b));
  });
  socket.end(data);
  t.equal(await answer, `${data.length} ${createHash('sha256').update(data).digest('hex')}`);
});

t.test('CONNECT to a port not in connectPorts is refused', async (t) => {
  const r = await connectVia(tg.proxyPort, `127.0.0.1:${origin.port}`);
  t.equal(r.status, 403);
  t.equal(r.headers['x-tollgate-error'], 'port_not_allowed');
  const e = await tg.waitForEntry((e) => e.reason === 'port_not_allowed');
  t.equal(e.action, 'blocked');
  t.equal(e.protocol, 'TUNNEL');
});

t.test('CONNECT failures map through the errno table', async (t) => {
  const refused = await connectVia(tg.proxyPort, `127.0.0.1:${closedPort}`);
  t.equal(refused.status, 502);
  t.equal(refused.headers['x-tollgate-error'], 'connection_refused');
  const dns = await connectVia(tg.proxyPort, 'nowhere.invalid:443');
  t.equal(dns.status, 502);
  t.equal(dns.headers['x-tollgate-error'], 'dns_failure');
  const bad = await rawExchange(tg.proxyPort, 'CONNECT not a target HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(bad, /^HTTP\/1\.1 400 /);
});

t.test('requests addressed to Tollgate\'s own listeners are refused, not looped', async (t) => {
  for (const url of [`http://127.0.0.1:${tg.proxyPort}/`, `http://localhost:${tg.proxyPort}/x`, `http://127.0.0.1:${tg.controlPort}/metrics`]) {
    const r = await viaProxy(tg.proxyPort, url);
    t.equal(r.status, 403, url);
    t.equal(r.headers['x-tollgate-error'], 'loop_detected', url);
  }
  const via = await viaProxy(tg.proxyPort, `${origin.url}/hello`, { headers: { via: '1.1 other, 1.1 tollgate-test-node' } });
  t.equal(via.status, 403, 'our own Via token means the request came around again');
  t.equal(via.headers['x-tollgate-error'], 'loop_detected');
});

t.test('WebSocket upgrade through the proxy', async (t) => {
  const { status, accept, socket, head } = await new Promise<{ status: number; accept: string; socket: net.Socket; head: Buffer }>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: tg.proxyPort,
      path: `${origin.url}/ws`,
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
    });
    req.on('upgrade', (res, socket, head) => resolve({ status: res.statusCode!, accept: String(res.headers['sec-websocket-accept']), socket, head }));
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  t.equal(status, 101);
  t.equal(accept, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'the origin computed the accept key (RFC 6455 §1.3 example)');
  // One masked text frame (RFC 6455 §5.2), then read the origin's echo.
  const payload = Buffer.from('ping through tollgate');
  const mask = randomBytes(4);
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
  const echoed = new Promise<string>((resolve) => {
    let buf = head;
    const tryParse = () => {
      if (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) resolve(buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString());
    };
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      tryParse();
    });
    tryParse();
  });
  socket.write(frame);
  t.equal(await echoed, 'echo:ping through tollgate');
  const seen = origin.seen.find((s) => s.url === '/ws')!;
  t.equal(seen.headers.upgrade, 'websocket');
  t.equal(seen.headers.via, '1.1 tollgate-test-node');
  socket.destroy();
  const e = await tg.waitForEntry((e) => e.protocol === 'WS');
  t.equal(e.status, 101);
});
