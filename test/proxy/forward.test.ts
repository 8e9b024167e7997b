import t, { type Test } from 'tap';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { HttpForwarder, type ForwardLimits } from '../../src/proxy/forward.js';
import { SelfGuard } from '../../src/proxy/dial.js';
import { upstreamFailure } from '../../src/proxy/errno.js';
import { cleanRequestHeaders } from '../../src/proxy/headers.js';
import { COOKIE_NAME } from '../../src/auth/identify.js';

/**
 * A raw origin: each request's path picks a canned byte-exact answer, so the framing cases are
 * what the wire carries, not what a server library would send. `/hang` never answers.
 */
const ANSWERS: Record<string, string> = {
  '/length': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello',
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n',
  '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n',
  '/204': 'HTTP/1.1 204 No Content\r\nX-Kind: empty\r\n\r\n',
  '/304': 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n',
  // RFC 9110 §8.6: a 304 may carry the Content-Length the 200 would have; it still has no body.
  '/304-length': 'HTTP/1.1 304 Not Modified\r\nETag: "v2"\r\nContent-Length: 99\r\n\r\n',
  '/head-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
  // A 100 the client never asked for (its own server already answered its Expect).
  '/unasked-100': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/close': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end',
  '/hints': 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/more': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES THAT ARE NOT A RESPONSE',
  '/less': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello',
  '/one-cookie': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: only=1; Path=/\r\n\r\nok',
  '/only-ours': `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: ${COOKIE_NAME}=planted\r\n\r\nok`,
  '/hop': `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, x-hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nSet-Cookie: ${COOKIE_NAME}=planted; Path=/\r\nSet-Cookie: own=1\r\nX-Origin: yes\r\n\r\nok`,
};
/** Answers after which the origin closes its side (the close-delimited and the short ones). */
const CLOSES = new Set(['/close', '/less']);

interface RawOrigin {
  readonly port: number;
  /** Request heads as the origin received them. */
  readonly heads: string[];
  /** Sockets the origin saw closed by the proxy while a request on them was unanswered. */
  abortedUnanswered: number;
  close(): void;
}

async function rawOrigin(): Promise<RawOrigin> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const state = { abortedUnanswered: 0 };
  const server = net.createServer((sock) => {
    sockets.add(sock);
    let buf = '';
    let waiting = false;
    sock.on('data', (c) => {
      buf += c.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        heads.push(head);
        const path = head.split(' ')[1] ?? '';
        const answer = ANSWERS[path];
        if (answer === undefined) {
          waiting = true; // /hang
          continue;
        }
        sock.write(answer);
        if (CLOSES.has(path)) sock.end();
      }
    });
    sock.on('close', () => {
      sockets.delete(sock);
      if (waiting) state.abortedUnanswered++;
    });
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    get abortedUnanswered() {
      return state.abortedUnanswered;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** front is a plain node:http server that hands every request to the forwarder, the way the proxy does. */
async function front(originPort: number, limits: ForwardLimits) {
  const fwd = new HttpForwarder({ hosts: () => new Map(), self: new SelfGuard() }, () => limits, 60_000, () => {
    throw new Error('no upstream TLS in this test');
  });
  const failures: { code: string; headersSent: boolean }[] = [];
  const server = http.createServer((req, res) => {
    const port = req.url === '/refused' ? 1 : originPort;
    cleanRequestHeaders(req.headers, 'tollgate-test', `127.0.0.1:${port}`, false);
    const ex = fwd.forward(req, res, { host: '127.0.0.1', port, path: req.url ?? '/', via: 'tollgate-test', tls: false }, (err, headersSent) => {
      const f = upstreamFailure(err);
      failures.push({ code: f.code, headersSent });
      if (!headersSent) res.writeHead(f.status, { 'content-type': 'text/plain' }).end(f.code);
    });
    res.once('close', () => {
      if (!res.writableFinished) ex.abort();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    failures,
    async close() {
      server.closeAllConnections();
      server.close();
      await fwd.close();
    },
  };
}

/** rig starts an origin and a front with the given response-head deadline, both stopped at the test's end. */
async function rig(t: Test, upstreamTimeoutMs: number) {
  const origin = await rawOrigin();
  const proxy = await front(origin.port, { upstreamTimeoutMs, upstreamIdleTimeoutMs: 2000 });
  t.teardown(async () => {
    await proxy.close();
    origin.close();
  });
  return { origin, proxy };
}

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers: NodeJS.Dict<string>;
  informational: number[];
}

function request(port: number, path: string, agent: http.Agent, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const informational: number[] = [];
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: res.trailers, informational }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('information', (i) => informational.push(i.statusCode));
    req.on('error', reject);
    req.end();
  });
}

t.test('the forwarder frames each kind of response the way the origin framed it', async (t) => {
  const { origin, proxy } = await rig(t, 2000);
  // One client connection for every case: a framing mistake would desync the requests after it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  const cases: { name: string; path: string; method?: string; status: number; body: string; check?: (g: Got) => void }[] = [
    { name: 'Content-Length', path: '/length', status: 200, body: 'hello', check: (g) => t.equal(g.headers['content-length'], '5') },
    {
      name: 'chunked with trailers',
      path: '/chunked',
      status: 200,
      body: 'hello world',
      check: (g) => {
        t.equal(g.headers['transfer-encoding'], 'chunked');
        t.same(g.trailers, { 'x-checksum': 'abc' }, 'the trailer is passed on');
      },
    },
    { name: 'HEAD keeps the length, sends no body', path: '/head', method: 'HEAD', status: 200, body: '', check: (g) => t.equal(g.headers['content-length'], '1000') },
    { name: '204', path: '/204', status: 204, body: '', check: (g) => t.equal(g.headers['x-kind'], 'empty') },
    { name: '304', path: '/304', status: 304, body: '', check: (g) => t.equal(g.headers.etag, '"v1"') },
    { name: '304 with a Content-Length has no body', path: '/304-length', status: 304, body: '', check: (g) => t.equal(g.headers.etag, '"v2"') },
    { name: 'HEAD of a chunked resource', path: '/head-chunked', method: 'HEAD', status: 200, body: '' },
    { name: 'close-delimited', path: '/close', status: 200, body: 'until the end' },
    {
      name: '103 Early Hints, then the response',
      path: '/hints',
      status: 200,
      body: 'ok',
      check: (g) => t.same(g.informational, [103], 'the interim response reaches the client'),
    },
    { name: 'more bytes than declared: only the declared ones', path: '/more', status: 200, body: 'hello' },
    { name: 'one Set-Cookie passes', path: '/one-cookie', status: 200, body: 'ok', check: (g) => t.same(g.headers['set-cookie'], ['only=1; Path=/']) },
    { name: "a lone Set-Cookie of ours is dropped", path: '/only-ours', status: 200, body: 'ok', check: (g) => t.equal(g.headers['set-cookie'], undefined) },
    {
      name: 'hop-by-hop, our cookie and Via',
      path: '/hop',
      status: 200,
      body: 'ok',
      check: (g) => {
        t.equal(g.headers['x-hop'], undefined, 'a header named in Connection is dropped');
        t.same(g.headers['set-cookie'], ['own=1'], "the origin cannot set Tollgate's cookie");
        t.equal(g.headers['x-origin'], 'yes');
        t.equal(g.headers.via, '1.1 tollgate-test');
      },
    },
  ];
  for (const c of cases) {
    // After each case a plain request on the same connection must still get its own answer.
    const g = await request(proxy.port, c.path, agent, c.method);
    t.equal(g.status, c.status, `${c.name}: status`);
    t.equal(g.body, c.body, `${c.name}: body`);
    c.check?.(g);
    const after = await request(proxy.port, '/length', agent);
    t.equal(after.body, 'hello', `${c.name}: the next request on the connection is not desynced`);
  }
  t.same(proxy.failures, [], 'none of these is a failure');
  const up = origin.heads.find((h) => h.startsWith('GET /length'))!;
  t.match(up, /\r\nvia: 1\.1 tollgate-test(\r\n|$)/i, 'the cleaned head goes up with Via');
});

t.test('an origin that sends fewer bytes than declared cuts the client short, never a complete response', async (t) => {
  const { origin, proxy } = await rig(t, 2000);
  const agent = new http.Agent({ keepAlive: false });
  await t.rejects(request(proxy.port, '/less', agent), 'the client sees an incomplete response');
  await new Promise((r) => setTimeout(r, 50));
  t.same(proxy.failures, [{ code: upstreamFailure({ code: 'ECONNRESET' }).code, headersSent: true }], 'recorded as a reset after the head was sent');
});

t.test('failures before the head: refused, timeout; a client that leaves aborts the upstream request', async (t) => {
  const { origin, proxy } = await rig(t, 300);
  const agent = new http.Agent({ keepAlive: false });
  const refused = await request(proxy.port, '/refused', agent);
  t.equal(refused.status, 502);
  t.equal(refused.body, 'connection_refused');
  const late = await request(proxy.port, '/hang', agent);
  t.equal(late.status, 504, 'no response head within upstreamTimeoutMs');
  t.equal(late.body, 'upstream_timeout');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(origin.abortedUnanswered, 1, 'the timed-out request was aborted upstream');

  // A client that gives up: the origin's connection for it is closed.
  const gone = new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/hang', agent });
    req.on('error', () => resolve());
    req.end();
    setTimeout(() => req.destroy(), 100);
  });
  await gone;
  const end = Date.now() + 2000;
  while (origin.abortedUnanswered < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.equal(origin.abortedUnanswered, 2, 'the client abort reached the origin');
  t.equal(proxy.failures.filter((f) => f.code === 'upstream_timeout').length, 1, 'a client abort is not reported as a failure');
});

t.test('an unasked 100 Continue is a bad upstream response', async (t) => {
  const { proxy } = await rig(t, 2000);
  const g = await request(proxy.port, '/unasked-100', new http.Agent({ keepAlive: false }));
  t.equal(g.status, 502);
  t.equal(g.body, 'bad_upstream_response');
});

/** echoOrigin answers each request with what it received: method, framing and body, keep-alive. */
async function echoOrigin(t: Test, opts: { closeIdleAfterMs?: number; answerEarly?: boolean; dropSecond?: boolean } = {}) {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const perSocket = new WeakMap<net.Socket, number>();
  const server = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    // The second request on a connection meets a connection closing under it, unanswered.
    if (opts.dropSecond && n === 2) return void req.socket.destroy();
    if (req.url === '/big') return void res.end(Buffer.alloc(4 * 1024 * 1024, 'b'));
    if (opts.answerEarly) {
      // Answers before reading the upload (as a 413 would), then drops the rest.
      res.writeHead(413, { 'content-length': '4' }).end('full');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('latin1');
      res.end(JSON.stringify({ method: req.method, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null, length: body.length, body: body.slice(0, 40), conn: connections }));
      // The origin closes the connection a moment after answering, as an origin's own idle timeout does.
      if (opts.closeIdleAfterMs !== undefined) setTimeout(() => req.socket.end(), opts.closeIdleAfterMs);
    });
  });
  server.on('connection', (s: net.Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

function send(port: number, path: string, opts: { method?: string; body?: Buffer[]; chunked?: boolean; gapMs?: number } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const total = (opts.body ?? []).reduce((n, b) => n + b.length, 0);
    const headers: Record<string, string> = opts.chunked ? { 'transfer-encoding': 'chunked' } : opts.body ? { 'content-length': String(total) } : {};
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const parts = [...(opts.body ?? [])];
    const next = () => {
      const p = parts.shift();
      if (p === undefined) return req.end();
      req.write(p);
      setTimeout(next, opts.gapMs ?? 5);
    };
    next();
  });
}

t.test('request bodies go up as they came: a known length as is, an unknown one re-framed as chunked', async (t) => {
  const origin = await echoOrigin(t);
  const proxy = await front(origin.port, { upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000 });
  t.teardown(() => proxy.close());
  const big = Buffer.alloc(300 * 1024, 'a');
  const withLength = JSON.parse((await send(proxy.port, '/upload', { method: 'POST', body: [big.subarray(0, 1000), big.subarray(1000)] })).body);
  t.match(withLength, { method: 'POST', te: null, cl: String(big.length), length: big.length }, 'Content-Length: the body in full, not re-framed');
  const chunked = JSON.parse((await send(proxy.port, '/upload', { method: 'PUT', body: [Buffer.from('part one, '), Buffer.from('part two')], chunked: true })).body);
  t.match(chunked, { method: 'PUT', te: 'chunked', cl: null, body: 'part one, part two' }, 'chunked: re-framed as chunked, the same bytes');
  t.same(proxy.failures, []);
});

t.test('a pooled connection the origin closed while idle: a GET is sent again on a new one', async (t) => {
  // The origin closes idle keep-alive connections after 50 ms; the pool keeps them up to 4 s.
  const origin = await echoOrigin(t, { closeIdleAfterMs: 50 });
  const proxy = await front(origin.port, { upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000 });
  t.teardown(() => proxy.close());
  t.equal((await send(proxy.port, '/one')).status, 200);
  await new Promise((r) => setTimeout(r, 200));
  const again = await send(proxy.port, '/two');
  t.equal(again.status, 200, 'answered on a new connection');
  t.equal(origin.connections(), 2);
  t.same(proxy.failures, [], 'the dead pooled connection is not a failure');
});

t.test('a pooled connection that dies under a request before any answer: a GET is sent once more, a POST is not', async (t) => {
  const origin = await echoOrigin(t, { dropSecond: true });
  const proxy = await front(origin.port, { upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000 });
  t.teardown(() => proxy.close());
  t.equal((await send(proxy.port, '/one')).status, 200);
  const again = await send(proxy.port, '/two');
  t.equal(again.status, 200, 'the GET was answered on a new connection');
  t.equal(origin.connections(), 2);
  t.same(proxy.failures, []);
  // The next request on that second connection is a POST: it dies the same way, and is not sent twice.
  const lost = await send(proxy.port, '/three', { method: 'POST', body: [Buffer.from('x')] });
  t.equal(lost.status, 502, 'a POST whose pooled connection died is answered 502, not sent again');
  t.same(proxy.failures.map((f) => f.code), ['connection_reset']);
  t.equal((await send(proxy.port, '/four', { method: 'POST', body: [Buffer.from('y')] })).status, 200, 'the next POST goes on a new connection');
});

t.test('an answer that comes before the upload is done is passed on, and its connection is not reused', async (t) => {
  const origin = await echoOrigin(t, { answerEarly: true });
  const proxy = await front(origin.port, { upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000 });
  t.teardown(() => proxy.close());
  // The second half of the upload comes well after the origin has answered.
  const r = await send(proxy.port, '/upload', { method: 'POST', body: [Buffer.alloc(64 * 1024, 'x'), Buffer.alloc(64 * 1024, 'y')], gapMs: 150 });
  t.equal(r.status, 413);
  t.equal(r.body, 'full');
  const next = await send(proxy.port, '/next');
  t.equal(next.status, 413, 'the next request gets its own answer');
  t.equal(origin.connections(), 2, 'on a new connection: the first was left mid-upload');
});

t.test('a response held back by a slow client leaves its pooled connection reading for the next one', async (t) => {
  const origin = await echoOrigin(t);
  const proxy = await front(origin.port, { upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000 });
  t.teardown(() => proxy.close());
  // A client that reads 4 MiB slowly: the upstream connection is paused for it, then the response ends.
  const slow = await new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: proxy.port, path: '/big', agent: false }, (res) => {
      let n = 0;
      res.pause();
      setTimeout(() => {
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.resume();
      }, 300);
    }).on('error', reject);
  });
  t.equal(slow, 4 * 1024 * 1024, 'the slow client got all of it');
  const next = await send(proxy.port, '/after');
  t.equal(next.status, 200, 'the next request on the pooled connection is answered');
  t.equal(origin.connections(), 1, 'on the same connection');
});
