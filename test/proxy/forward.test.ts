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
  t.same(proxy.failures, [{ code: upstreamFailure({ code: 'UND_ERR_SOCKET' }).code, headersSent: true }], 'recorded as a reset after the head was sent');
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
