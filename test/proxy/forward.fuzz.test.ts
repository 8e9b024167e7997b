/**
 * forward.fuzz: the forwarder's framing glue held against Node's own HTTP client, on mutated responses.
 *
 *   raw origin (one mutated response per connection) <- node:http client directly     -> outcome A
 *                                                    <- forwarder (upstream.ts) <- client -> outcome B
 *
 * Both sides parse with llhttp, so what they must agree on is what the glue decides: where a message
 * ends, what a HEAD or a 1xx means, when a connection can be used again. For every case: if Node's
 * client reads a final response, the client behind the forwarder gets the same status and body; if
 * it cannot, the forwarder never hands out a complete response with a different body. The forwarder
 * must not crash, hang or leak a connection either way. The seed is printed; TOLLGATE_FUZZ_SEED and
 * TOLLGATE_FUZZ_CASES replay or extend a run.
 */
import t from 'tap';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { HttpForwarder } from '../../src/proxy/forward.js';
import { SelfGuard } from '../../src/proxy/dial.js';
import { cleanRequestHeaders } from '../../src/proxy/headers.js';
import { Rng } from '../helpers/rng.js';

const SEED = Number(process.env.TOLLGATE_FUZZ_SEED ?? 0x7011) >>> 0;
const CASES = Number(process.env.TOLLGATE_FUZZ_CASES ?? 300);

const BASES = [
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
  'HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nContent-Length: 40\r\n\r\n',
  'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end',
  'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold',
  'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 500 Oops\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nfail',
];
const PIECES = ['\r\n', '\n', '\r', ' ', ':', '0', 'Content-Length: 3\r\n', 'Transfer-Encoding: chunked\r\n', 'HTTP/1.1 200 OK\r\n', 'ff\r\n', '\x00', 'é', '-1', 'chunked', ';ext=1'];

/** mutate applies 1-3 byte-level edits: delete, duplicate, insert a piece, or cut the end. */
function mutate(rng: Rng, base: string): string {
  let s = base;
  const edits = 1 + rng.int(3);
  for (let i = 0; i < edits; i++) {
    const at = rng.int(s.length + 1);
    switch (rng.int(4)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + rng.int(4));
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at, at + 1 + rng.int(6)).repeat(2) + s.slice(at + 1 + rng.int(6));
        break;
      case 2:
        s = s.slice(0, at) + rng.pick(PIECES) + s.slice(at);
        break;
      default:
        s = s.slice(0, Math.max(1, at));
    }
  }
  return s;
}

/** Outcome is what a client made of a response: a final status and body, or that it could not read one. */
type Outcome = { readonly ok: true; readonly status: number; readonly body: string } | { readonly ok: false };

function fetchOutcome(port: number, path: string, method: string, viaProxy: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    let got: http.IncomingMessage | null = null;
    let body = '';
    const outcome = (): Outcome => (got === null || !got.complete || (viaProxy && got.headers['x-forward-error'] !== undefined) ? { ok: false } : { ok: true, status: got.statusCode ?? 0, body });
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      got = res;
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done(outcome()));
      res.on('error', () => done(outcome()));
      res.on('aborted', () => done(outcome()));
    });
    // Bytes after a complete response are an error to Node's client, but the response was whole:
    // what counts is whether the message itself was read to its end.
    req.on('error', () => setImmediate(() => done(outcome())));
    const timer = setTimeout(() => {
      req.destroy();
      done({ ok: false });
    }, 3000);
    req.end();
  });
}

t.test(`mutated responses: the forwarder agrees with Node's client (seed ${SEED}, ${CASES} cases)`, async (t) => {
  const rng = new Rng(SEED);
  const answers = new Map<string, string>();
  const sockets = new Set<net.Socket>();
  // One response per connection, then close: every case starts on a fresh upstream connection.
  const origin = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.on('data', (c) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const path = buf.slice(0, end).split(' ')[1] ?? '';
      sock.end(answers.get(path) ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1');
    });
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const originPort = (origin.address() as AddressInfo).port;
  const fwd = new HttpForwarder({ hosts: () => new Map(), self: new SelfGuard() }, () => ({ upstreamTimeoutMs: 1500, upstreamIdleTimeoutMs: 1500 }), 60_000, () => {
    throw new Error('no TLS here');
  });
  const front = http.createServer((req, res) => {
    cleanRequestHeaders(req.headers, 'tollgate-fuzz', `127.0.0.1:${originPort}`, false);
    const ex = fwd.forward(req, res, { host: '127.0.0.1', port: originPort, path: req.url ?? '/', via: 'tollgate-fuzz', tls: false }, (_err, headersSent) => {
      if (!headersSent) res.writeHead(502, { 'x-forward-error': '1', 'content-length': '0' }).end();
    });
    res.once('close', () => {
      if (!res.writableFinished) ex.abort();
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const frontPort = (front.address() as AddressInfo).port;
  t.teardown(async () => {
    front.closeAllConnections();
    front.close();
    await fwd.close();
    for (const s of sockets) s.destroy();
    origin.close();
  });

  let agreed = 0;
  let bothFailed = 0;
  const onlyProxyRefused: string[] = [];
  const disagreements: string[] = [];
  for (let i = 0; i < CASES; i++) {
    const answer = mutate(rng, rng.pick(BASES));
    const method = rng.int(5) === 0 ? 'HEAD' : 'GET';
    const path = `/case-${i}`;
    answers.set(path, answer);
    const direct = await fetchOutcome(originPort, path, method, false);
    const proxied = await fetchOutcome(frontPort, path, method, true);
    const show = `#${i} ${method} ${JSON.stringify(answer)}: direct ${JSON.stringify(direct)}, proxied ${JSON.stringify(proxied)}`;
    if (direct.ok && direct.status === 101) {
      // A switch of protocols is only ever relayed as an upgrade (websocket.ts); the forwarder refuses it.
      bothFailed++;
    } else if (direct.ok) {
      if (proxied.ok && proxied.status === direct.status && proxied.body === direct.body) agreed++;
      // A response Node reads but the forwarder refuses is the safe direction; one it changes is not.
      else if (proxied.ok) disagreements.push(show);
      else onlyProxyRefused.push(show);
    } else if (proxied.ok) {
      disagreements.push(show);
    } else bothFailed++;
  }
  t.same(disagreements, [], 'no response reached the client changed');
  t.same(onlyProxyRefused, [], 'no response Node reads is refused by the forwarder');
  t.ok(agreed > CASES / 10, `${agreed} of ${CASES} passed on exactly, ${bothFailed} unreadable to both`);
});
