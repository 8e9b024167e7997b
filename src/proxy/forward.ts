/**
 * forward: plain HTTP to origins, on pooled keep-alive connections (upstream.ts).
 *
 *   Client -> Proxy (GET http://host/..) -> pipeline -> forward: a pooled connection to scheme://host:port
 *             (dialled through dial.ts; TLS verified for decrypted requests) -> response head + body
 *             streamed to the client's response
 *
 * The origin's response is framed by llhttp, the parser Node itself uses, so what counts as a message
 * boundary (Content-Length, chunked, close-delimited, HEAD, 204 and 304 without a body) is decided by
 * well-kept code, not here. This module only moves heads and bytes:
 * - the request head goes up as cleaned by the caller (headers.ts), minus the framing headers set
 *   again here (a body of unknown length is re-framed as chunked) and Expect (Node's server has
 *   already answered `100 Continue` to the client, RFC 9110 §10.1.1);
 * - the response head goes down cleaned (hop-by-hop, our cookie, Via), and is corked with the
 *   first body bytes of the same read, so a small response leaves in one write;
 * - 102 and 103 interim responses are passed on; a `100` the client did not ask for is an error,
 *   and is answered as a bad upstream response;
 * - trailers of a chunked response are passed on when the client's response is chunked too.
 * Timeouts: the origin has upstreamTimeoutMs from dispatch to its response head (DNS, connect,
 * think time), and the body may idle upstreamIdleTimeoutMs between bytes. A client that leaves
 * aborts the upstream request.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { dial } from './dial.js';
import { cleanResponseHeaders } from './headers.js';
import { UpstreamPool, type ResponseSink, type UpstreamControl } from './upstream.js';
import { stripOwnSetCookie } from '../auth/identify.js';

/** DialWith is what `dial` needs to reach an origin (resolver, self guard), passed through untouched. */
export type DialWith = Parameters<typeof dial>[0];

/** ForwardLimits are the timeouts one forwarder applies (config.limits). */
export interface ForwardLimits {
  readonly upstreamTimeoutMs: number;
  readonly upstreamIdleTimeoutMs: number;
}

/** ForwardTarget is where one request goes and how it is named on the way. */
export interface ForwardTarget {
  readonly host: string;
  readonly port: number;
  /** Origin-form request target: path and query. */
  readonly path: string;
  /** Our Via token, for the response's Via. */
  readonly via: string;
  /** Whether the origin is spoken to over TLS (a request decrypted from an inspected tunnel). */
  readonly tls: boolean;
}

/** UpstreamTrust gives the CAs an upstream TLS connection to a host is verified against. */
export type UpstreamTrust = (host: string) => SecureContext;

/**
 * ForwardFailure is reported once when the exchange fails. `headersSent` tells whether the client
 * already has a response head (then the forwarder has cut the client's response short itself, and
 * the caller only records it; otherwise the caller answers with an error page).
 */
export type OnForwardError = (err: Error, headersSent: boolean) => void;

/** Exchange is one forwarded request in flight. */
export interface Exchange {
  /** abort ends the upstream request (the client has gone). */
  abort(): void;
}

/** REQUEST_DROP are request headers framed again here or already answered; see the module comment. */
const REQUEST_DROP = ['transfer-encoding', 'expect'];
/** REASON_OK is what Node takes as a reason phrase (its header-value check). */
const REASON_OK = /^[\t\x20-\x7e\x80-\xff]*$/;
/** POOL_IDLE_CAP_MS: origins commonly close idle connections after 5 s; ours go first, so a request rarely meets a closing one. */
const POOL_IDLE_CAP_MS = 4000;

function timeoutError(): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error('upstream response timeout');
  e.code = 'ETIMEDOUT';
  return e;
}

/** HttpForwarder owns the upstream pools; one per worker. */
export class HttpForwarder {
  readonly #pools = new Map<string, UpstreamPool>();
  readonly #limits: () => ForwardLimits;
  readonly #sweep: NodeJS.Timeout;

  constructor(
    private readonly dialWith: DialWith,
    limits: () => ForwardLimits,
    poolIdleMs: number,
    private readonly trust: UpstreamTrust,
  ) {
    this.#limits = limits;
    const idleMs = Math.min(poolIdleMs, POOL_IDLE_CAP_MS);
    // One timer for every pool: idle connections past idleMs are closed, empty pools forgotten.
    this.#sweep = setInterval(() => {
      const before = Date.now() - idleMs;
      for (const [key, pool] of this.#pools) {
        pool.sweep(before);
        if (pool.size === 0) this.#pools.delete(key);
      }
    }, 1000);
    this.#sweep.unref();
  }

  /**
   * forward sends req (headers already cleaned, Host set; they are trimmed further in place) to
   * the target and streams the answer into res. Errors go to onError once; the caller records
   * them and answers if nothing was sent.
   */
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, onError: OnForwardError): Exchange {
    // The head is the caller's to give away (already cleaned in place), so it is trimmed in place too.
    const headers: IncomingHttpHeaders = req.headers;
    const len = headers['content-length'];
    const chunked = headers['transfer-encoding'] !== undefined;
    const hasBody = chunked || (len !== undefined && len !== '0');
    for (const h of REQUEST_DROP) if (headers[h] !== undefined) delete headers[h];
    // RFC 9112 §6.3: with Transfer-Encoding, Content-Length is ignored (and must not go up beside it).
    if (chunked) delete headers['content-length'];
    const limits = this.#limits();
    const relay = new ResponseRelay(res, target.via, onError, limits);
    const control = this.#pool(target).request({ method: req.method ?? 'GET', path: target.path, headers, body: hasBody ? { stream: req, chunked } : null }, relay);
    relay.control = control;
    return relay;
  }

  /** #pool is the pool for the target's origin, made on first use. */
  #pool(target: ForwardTarget): UpstreamPool {
    const key = `${target.tls ? 'https' : 'http'}://${target.host}:${target.port}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const { host, port, tls } = target;
      pool = new UpstreamPool((cb) => connectVia(this.dialWith, host, port, tls, this.#limits().upstreamTimeoutMs, this.trust, cb), () => this.#limits().upstreamIdleTimeoutMs);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** close drops every pooled connection. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }
}

/**
 * connectVia opens an upstream connection: every one goes through dial (resolver + self guard). An https origin gets TLS on top: SNI (unless the host is an IP literal), ALPN http/1.1,
 * and full verification of the chain and the name against the host's trust; a certificate that
 * fails fails the connection with OpenSSL's code, which the errno table turns into a block page.
 */
function connectVia(dialWith: DialWith, host: string, port: number, secure: boolean, timeoutMs: number, trust: UpstreamTrust, cb: (err: Error | null, socket: Socket | null) => void): void {
  const raw = dial(dialWith, host, port, { noDelay: true });
  let sock: Socket = raw;
  let settled = false;
  const settle = (err: Error | null) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    sock.off('error', settle);
    raw.off('error', settle);
    if (err === null) cb(null, sock);
    else {
      sock.destroy();
      raw.destroy();
      cb(err, null);
    }
  };
  const timer = setTimeout(() => settle(timeoutError()), timeoutMs);
  raw.once('error', settle);
  // dial judges the connected peer in its own 'connect' listener, which runs first; a socket it
  // destroyed there settles through 'error' with its LoopError instead.
  raw.once('connect', () => {
    if (raw.destroyed) return;
    if (!secure) return settle(null);
    let context: SecureContext;
    try {
      context = trust(host);
    } catch (err) {
      return settle(err as Error);
    }
    const t = tlsConnect({
      socket: raw,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['http/1.1'],
      secureContext: context,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    });
    sock = t;
    t.once('error', settle);
    t.once('secureConnect', () => settle(null));
  });
}

/**
 * ResponseRelay writes the origin's answer to the client's response, with backpressure both ways,
 * and reports a failure once.
 */
class ResponseRelay implements ResponseSink, Exchange {
  /** The upstream exchange, once it is under way. */
  control: UpstreamControl | null = null;
  #aborted = false;
  #failed = false;
  #timer: NodeJS.Timeout | null = null;
  #headed = false;
  #corked = false;
  #waitingDrain = false;
  /** Made at the first backpressure, not for every response. */
  #onDrain: (() => void) | null = null;

  constructor(
    private readonly res: ServerResponse,
    private readonly via: string,
    private readonly report: OnForwardError,
    private readonly limits: ForwardLimits,
  ) {}

  /**
   * onRequestSent starts the response-head deadline once the whole request has gone up: an upload
   * takes what it takes (each side's idle limit watches it), the origin's thinking time does not.
   */
  onRequestSent(): void {
    if (this.#headed || this.#failed || this.#aborted || this.#timer !== null) return;
    this.#timer = setTimeout(() => this.#fail(timeoutError()), this.limits.upstreamTimeoutMs);
  }

  abort(): void {
    this.#aborted = true;
    this.#clearTimer();
    this.control?.abort();
  }

  onInterim(statusCode: number, headers: IncomingHttpHeaders): void {
    // Interim responses Node's server can send. They are hints: only Link goes on (what browsers use
    // a 103 for; nothing of the origin's may set our cookie or name hop-by-hop headers here either),
    // and one Node will not write is dropped, and the final response still comes.
    try {
      if (statusCode === 103) {
        const link = headers.link;
        if (link !== undefined) this.res.writeEarlyHints({ link });
      } else if (statusCode === 102) this.res.writeProcessing();
    } catch {
      // Dropped on purpose, see above.
    }
  }

  onHead(statusCode: number, statusMessage: string, headers: IncomingHttpHeaders): boolean {
    const res = this.res;
    this.#headed = true;
    this.#clearTimer();
    if (res.destroyed) return false;
    // An origin must not set (or shadow) Tollgate's own cookie.
    stripOwnSetCookie(headers);
    try {
      // A reason phrase Node would refuse is only words: the standard one for the code stands in.
      res.writeHead(statusCode, REASON_OK.test(statusMessage) ? statusMessage : undefined, cleanResponseHeaders(headers, this.via));
    } catch (err) {
      // A head Node will not write (an invalid header value): the origin's answer is not valid. What
      // writeHead took of it before it threw is cleared, so the error page carries none of it.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.statusMessage = '';
      const e = err as NodeJS.ErrnoException;
      e.code = 'HPE_INVALID_HEADER_TOKEN';
      this.#fail(e);
      return false;
    }
    // Head and the first body bytes of this read leave together, in one write.
    const sock = res.socket;
    if (sock !== null && !this.#corked) {
      this.#corked = true;
      sock.cork();
      process.nextTick(() => sock.uncork());
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // One wait for drain, however many chunks of the same read arrive before it.
    if (!this.#waitingDrain) {
      this.#waitingDrain = true;
      this.#onDrain ??= () => {
        this.#waitingDrain = false;
        this.control?.resume();
      };
      this.res.once('drain', this.#onDrain);
    }
    return false;
  }

  onEnd(trailers: IncomingHttpHeaders | null): void {
    const res = this.res;
    if (trailers !== null && res.chunkedEncoding && hasAny(trailers)) res.addTrailers(trailers as OutgoingHttpHeaders as Record<string, string>);
    res.end();
  }

  onError(err: Error): void {
    this.#fail(err);
  }

  #fail(err: Error): void {
    this.#clearTimer();
    if (this.#failed) return;
    this.#failed = true;
    this.control?.abort();
    if (this.#aborted) return; // the client left first: nothing to answer, nothing to report
    const sent = this.res.headersSent;
    if (sent) this.res.destroy();
    this.report(err, sent);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}

/** hasAny tells whether an object has an own key, without building the key list (run per response). */
function hasAny(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}
