/**
 * The explicit listener refuses request lines and framings that a lenient parser would read one
 * way and an origin another, and never writes a URL's password to a log. Each case goes to the
 * proxy port as raw bytes; a recording origin shows what, if anything, reached it.
 */
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import { rawExchange, startTestTollgate } from '../helpers/tollgate.js';

const origin = await startOrigin();
const tg = await startTestTollgate();
t.teardown(async () => {
  await tg.close();
  await origin.close();
});
const o = `127.0.0.1:${origin.port}`;

const cases: { name: string; raw: string; status: number; code: string }[] = [
  { name: 'a bare LF inside an absolute URL', raw: `GET http://${o}/hello\nX-Evil: 1 HTTP/1.1\r\nHost: ${o}\r\n\r\n`, status: 400, code: 'bad_request_line' },
  { name: 'a bare LF inside an origin-form line', raw: `GET /proxy.pac\nX-Evil: 1 HTTP/1.1\r\nHost: ip.tollgate.test\r\n\r\n`, status: 400, code: 'bad_request_line' },
  { name: 'a raw CR inside the URL', raw: `GET http://${o}/hel\rlo HTTP/1.1\r\nHost: ${o}\r\n\r\n`, status: 400, code: '' },
  { name: 'an HTTP/0.9 request line', raw: `GET http://${o}/hello\r\n\r\n`, status: 400, code: 'bad_request_line' },
  { name: 'HTTP/2.0 on a text request line', raw: `GET http://${o}/hello HTTP/2.0\r\nHost: ${o}\r\n\r\n`, status: 505, code: 'http_version_not_supported' },
  { name: 'HTTP/1.2', raw: `GET http://${o}/hello HTTP/1.2\r\nHost: ${o}\r\n\r\n`, status: 400, code: '' },
  { name: 'a CONNECT line without a version', raw: `CONNECT ${o}\r\n\r\n`, status: 400, code: 'bad_request_line' },
  { name: 'a WebSocket upgrade on HTTP/0.9', raw: `GET http://${o}/ws\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`, status: 400, code: '' },
  { name: 'Transfer-Encoding: identity, chunked', raw: `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 501, code: 'unsupported_transfer_coding' },
  { name: 'Transfer-Encoding: gzip', raw: `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: gzip\r\n\r\nabc`, status: 501, code: 'unsupported_transfer_coding' },
  { name: 'an unknown coding before chunked', raw: `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: x-custom, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 501, code: 'unsupported_transfer_coding' },
  { name: 'chunked then another coding', raw: `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 400, code: '' },
  { name: 'two Transfer-Encoding headers', raw: `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 400, code: '' },
  { name: 'Transfer-Encoding in HTTP/1.0', raw: `POST http://${o}/echo HTTP/1.0\r\nHost: ${o}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 400, code: 'bad_framing' },
  { name: 'Transfer-Encoding and Content-Length together', raw: `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 400, code: '' },
  { name: 'Transfer-Encoding on a CONNECT', raw: `CONNECT ${o} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n`, status: 400, code: 'bad_framing' },
];

for (const c of cases) {
  t.test(`refused: ${c.name}`, async (t) => {
    const before = origin.seen.length;
    const out = await rawExchange(tg.proxyPort, c.raw, 2000);
    t.match(out, new RegExp(`^HTTP/1\\.1 ${c.status} `), 'answered with the status');
    if (c.code !== '') t.match(out, new RegExp(`x-tollgate-error: ${c.code}`, 'i'), 'with its stable code');
    t.match(out, /connection: close/i, 'and the connection is closed (the framing of what follows is unknown)');
    t.equal(origin.seen.length, before, 'nothing reached the origin');
  });
}

t.test('a lone chunked coding, in any letter case, is still forwarded', async (t) => {
  const out = await rawExchange(tg.proxyPort, `POST http://${o}/echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 2000);
  t.match(out, /^HTTP\/1\.1 200 /);
  t.match(out, /x-received: 3/i, 'the origin got the 3-byte body');
});

t.test('a URL with a password is refused and the password is written to no log', async (t) => {
  const secret = 'hunter2-in-url';
  const before = origin.seen.length;
  const http = await rawExchange(tg.proxyPort, `GET http://alice:${secret}@${o}/hello HTTP/1.1\r\nHost: ${o}\r\n\r\n`, 2000);
  t.match(http, /^HTTP\/1\.1 400 /);
  t.match(http, /x-tollgate-error: credentials_in_url/i);
  const tunnel = await rawExchange(tg.proxyPort, `CONNECT alice:${secret}@${o} HTTP/1.1\r\nHost: ${o}\r\n\r\n`, 2000);
  t.match(tunnel, /^HTTP\/1\.1 400 /);
  const ws = await rawExchange(tg.proxyPort, `GET http://alice:${secret}@${o}/ws HTTP/1.1\r\nHost: ${o}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`, 2000);
  t.match(ws, /^HTTP\/1\.1 400 /);
  t.equal(origin.seen.length, before, 'nothing reached the origin');
  const http1 = await tg.waitForEntry((e) => e.protocol === 'HTTP' && e.reason === 'credentials_in_url');
  t.equal(http1.url, `http://${o}/hello`, 'the access log has the URL without its userinfo');
  await tg.waitForEntry((e) => e.protocol === 'TUNNEL' && e.status === 400 && e.url === o);
  await tg.waitForEntry((e) => e.protocol === 'WS' && e.status === 400 && e.url === `http://${o}/ws`);
  t.notMatch(tg.access.raw, secret, 'no access-log line holds the password');
  t.notMatch(tg.app.raw, secret, 'no application-log line holds it either');
});
