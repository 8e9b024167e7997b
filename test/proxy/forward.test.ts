import t, { type Test } from 'tap';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { HttpForwarder, type ForwardLimits } from '../../src/proxy/forward.js';
import { SelfGuard, type DialOptions } from '../../src/proxy/dial.js';
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
  '/odd-names': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nconstructor: mine\r\n__proto__: x\r\ntoString: y\r\n\r\nok',
  '/hints-dirty': `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nSet-Cookie: ${COOKIE_NAME}=planted\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
  '/tiny-chunks': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'1\r\nx\r\n'.repeat(50_000)}0\r\n\r\n`,
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
async function front(originPort: number, limits: ForwardLimits, dialWith: DialOptions = { hosts: () => new Map(), self: new SelfGuard() }, originHost = '127.0.0.1') {
  const fwd = new HttpForwarder(dialWith, () => limits, 60_000, () => {
    throw new Error('no upstream TLS in this test');
  });
  const failures: { code: string; headersSent: boolean }[] = [];
  const server = http.createServer((req, res) => {
    const port = req.url === '/refused' ? 1 : originPort;
    cleanRequestHeaders(req.headers, 'tollgate-test', `${originHost}:${port}`, false);
    const ex = fwd.forward(req, res, { host: originHost, port, path: req.url ?? '/', via: 'tollgate-test', tls: false }, (err, headersSent) => {
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
    fwd,
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

/**
 * readLate GETs a path and starts reading its body only after waitMs: the byte count at the end, or
 * minus the count so far when the response is cut off.
 */
function readLate(port: number, path: string, waitMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let n = 0;
      res.pause();
      setTimeout(() => {
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.on('aborted', () => resolve(-n));
        res.resume();
      }, waitMs);
    }).on('error', reject);
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
  return { port: (server.address() as AddressInfo).port, connections: () => connections, open: () => sockets.size };
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
  const slow = await readLate(proxy.port, '/big', 300);
  t.equal(slow, 4 * 1024 * 1024, 'the slow client got all of it');
  const next = await send(proxy.port, '/after');
  t.equal(next.status, 200, 'the next request on the pooled connection is answered');
  t.equal(origin.connections(), 1, 'on the same connection');
});

t.test("an origin's odd header names stay plain headers, and a 103 passes on only its Link", async (t) => {
  const { proxy } = await rig(t, 2000);
  const odd = await request(proxy.port, '/odd-names', new http.Agent({ keepAlive: false }));
  t.equal(odd.headers.constructor, 'mine' as unknown as typeof odd.headers.constructor);
  t.equal(odd.headers.tostring, 'y');
  t.notOk('0' in odd.headers, 'no keys from a prototype');
  const hints = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/hints-dirty', agent: false }, (res) => res.resume());
    req.on('information', (i) => resolve(i.headers));
    req.on('error', reject);
    req.end();
  });
  t.same(Object.keys(hints).sort(), ['link'], "only Link: no cookie of ours, no hop-by-hop names");
});

t.test('a response of many tiny chunks to a slow client waits for one drain at a time', async (t) => {
  const { proxy } = await rig(t, 2000);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const got = await readLate(proxy.port, '/tiny-chunks', 200);
  t.equal(got, 50_000);
  t.notOk(warnings.includes('MaxListenersExceededWarning'), 'no pile of drain listeners');
});

t.test('an upload slower than the response deadline is not cut: the deadline starts when the request is sent', async (t) => {
  const origin = await echoOrigin(t);
  const proxy = await front(origin.port, { upstreamTimeoutMs: 400, upstreamIdleTimeoutMs: 2000 });
  t.teardown(() => proxy.close());
  const parts = Array.from({ length: 8 }, (_, i) => Buffer.from(`part ${i};`));
  const r = await send(proxy.port, '/upload', { method: 'POST', body: parts, chunked: true, gapMs: 150 });
  t.equal(r.status, 200, 'about 1.2 s of upload against a 400 ms deadline');
  t.match(JSON.parse(r.body), { length: parts.reduce((n, p) => n + p.length, 0) });
  t.same(proxy.failures, []);
});

t.test('a client that stops reading longer than the idle limit is not cut off (the origin was not idle)', async (t) => {
  const origin = await echoOrigin(t);
  const proxy = await front(origin.port, { upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 400 });
  t.teardown(() => proxy.close());
  const got = await readLate(proxy.port, '/big', 1200);
  t.equal(got, 4 * 1024 * 1024, 'all of it, after a pause three times the idle limit');
  t.same(proxy.failures, []);
});

t.test('an early answer to an upload held back by the origin: the rest of the upload is read and dropped', async (t) => {
  // The origin reads nothing and answers after 300 ms; the upload is far larger than any buffer.
  const sockets = new Set<net.Socket>();
  const origin = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.pause();
    setTimeout(() => s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfull'), 300);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    origin.close();
  });
  const proxy = await front((origin.address() as AddressInfo).port, { upstreamTimeoutMs: 5000, upstreamIdleTimeoutMs: 5000 });
  t.teardown(() => proxy.close());
  const total = 20 * 1024 * 1024;
  const outcome = await new Promise<{ status: number; sent: boolean }>((resolve) => {
    let status = 0;
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/upload', method: 'POST', headers: { 'content-length': String(total) }, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
    });
    // The client's server may instead close the connection once it has answered: also not stalled.
    req.on('error', () => resolve({ status, sent: true }));
    const chunk = Buffer.alloc(1024 * 1024, 'u');
    let left = 20;
    const write = () => {
      while (left > 0) {
        left--;
        if (!req.write(chunk)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
    req.on('finish', () => resolve({ status, sent: true }));
    setTimeout(() => resolve({ status, sent: false }), 8000);
  });
  t.equal(outcome.status, 413, 'the early answer reached the client');
  t.ok(outcome.sent, 'and the upload was not left stalled: the rest was taken, or the connection closed');
});

t.test('a pool whose first connection is still being opened is not swept away, and close() ends it', async (t) => {
  const origin = await echoOrigin(t);
  // The name takes 1.5 s to resolve, across at least one sweep.
  const slow: DialOptions = { hosts: () => new Map(), self: new SelfGuard(), resolve: (_name, cb) => void setTimeout(() => cb(null, ['127.0.0.1']), 1500) };
  const proxy = await front(origin.port, { upstreamTimeoutMs: 5000, upstreamIdleTimeoutMs: 5000 }, slow, 'slow.lab.test');
  t.equal((await send(proxy.port, '/one')).status, 200);
  t.equal((await send(proxy.port, '/two')).status, 200);
  t.equal(origin.connections(), 1, 'the second request reused the first connection');
  await proxy.close();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(origin.open(), 0, 'close() left no connection open');
});
