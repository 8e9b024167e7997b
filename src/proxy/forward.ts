/**
 * forward: plain HTTP to origins on undici's dispatcher, with pooled keep-alive connections.
 *
 *   Client -> Proxy (GET http://host/..) -> pipeline -> forward: dispatch on the pool for host:port
 *             (connections dialled through dial.ts) -> response head + body streamed to the client
 *
 * undici frames the origin's response with llhttp, the parser Node itself uses, so what counts as
 * a message boundary (Content-Length, chunked, close-delimited, HEAD, 204 and 304 without a body)
 * is decided by well-kept code, not here. This module only moves heads and bytes:
 * - the request head goes up as cleaned by the caller (headers.ts), minus the framing headers
 *   undici sets itself (Transfer-Encoding: it re-frames a body of unknown length as chunked) and
 *   Expect (Node's server has already answered `100 Continue` to the client, RFC 9110 §10.1.1);
 * - the response head goes down cleaned (hop-by-hop, our cookie, Via), and is corked with the
 *   first body bytes of the same read, so a small response leaves in one write;
 * - 102 and 103 interim responses are passed on; a `100` the client did not ask for is an error
 *   to undici, and is answered as a bad upstream response;
 * - trailers of a chunked response are passed on when the client's response is chunked too.
 * Timeouts: the origin has upstreamTimeoutMs from dispatch to its response head (DNS, connect,
 * think time), and the body may idle upstreamIdleTimeoutMs between bytes. A client that leaves
 * aborts the upstream request.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import { dial } from './dial.js';
import { cleanResponseHeaders } from './headers.js';
import { stripOwnSetCookie } from '../auth/identify.js';

/**
 * Agent is undici's dispatcher, loaded from its own module: the package's index also loads fetch,
 * WebSocket, caches and mocks, about 9 MiB of a data plane's memory that nothing here uses. The
 * path is undici's (no `exports` map restricts it) and the version is pinned exactly.
 */
const Agent = createRequire(import.meta.url)('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;

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

/** REQUEST_DROP are request headers undici frames itself or refuses; see the module comment. */
const REQUEST_DROP = ['transfer-encoding', 'expect'];

function timeoutError(): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error('upstream response timeout');
  e.code = 'ETIMEDOUT';
  return e;
}

/** HttpForwarder owns the upstream pools; one per proxy listener. */
export class HttpForwarder {
  readonly #agent: UndiciAgent;
  readonly #limits: () => ForwardLimits;

  constructor(dialWith: DialWith, limits: () => ForwardLimits, poolIdleMs: number, trust: UpstreamTrust) {
    this.#limits = limits;
    this.#agent = new Agent({
      connect: (opts, cb) => connectVia(dialWith, opts, limits().upstreamTimeoutMs, trust, cb),
      // The response-head deadline is ours (it covers the dial too); the body's idle limit is undici's.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: Math.min(poolIdleMs, 4000),
      keepAliveMaxTimeout: poolIdleMs,
      pipelining: 1,
      strictContentLength: true,
    });
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
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const limits = this.#limits();
    const handler = new ResponseRelay(res, target.via, onError, limits);
    const opts: Dispatcher.DispatchOptions = {
      origin: `${target.tls ? 'https' : 'http'}://${host}:${target.port}`,
      method: req.method ?? 'GET',
      path: target.path,
      headers: headers as Record<string, string | string[]>,
      body: hasBody ? req : null,
      bodyTimeout: limits.upstreamIdleTimeoutMs,
    };
    try {
      this.#agent.dispatch(opts, handler);
    } catch (err) {
      // undici refuses some heads outright (a header value it cannot send): the same 502 path.
      handler.onResponseError(null, err as Error);
    }
    return handler;
  }

  /** close drops every pooled connection. */
  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}

/**
 * connectVia is undici's connector: every upstream connection goes through dial (resolver + self
 * guard). An https origin gets TLS on top: SNI (unless the host is an IP literal), ALPN http/1.1,
 * and full verification of the chain and the name against the host's trust; a certificate that
 * fails fails the connection with OpenSSL's code, which the errno table turns into a block page.
 */
function connectVia(
  dialWith: DialWith,
  opts: { hostname: string; port: string; protocol: string },
  timeoutMs: number,
  trust: UpstreamTrust,
  cb: (...args: [null, Socket] | [Error, null]) => void,
): void {
  const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
  const secure = opts.protocol === 'https:';
  const raw = dial(dialWith, host, Number(opts.port) || (secure ? 443 : 80), { noDelay: true });
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
 * ResponseRelay is undici's handler for one exchange: it writes the origin's answer to the client's
 * response, with backpressure both ways, and reports a failure once.
 */
class ResponseRelay implements Dispatcher.DispatchHandler, Exchange {
  #controller: Dispatcher.DispatchController | null = null;
  #aborted = false;
  #failed = false;
  #timer: NodeJS.Timeout | null;
  #corked = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly via: string,
    private readonly report: OnForwardError,
    limits: ForwardLimits,
  ) {
    this.#timer = setTimeout(() => this.#fail(timeoutError()), limits.upstreamTimeoutMs);
  }

  abort(): void {
    this.#aborted = true;
    this.#clearTimer();
    this.#controller?.abort(new Error('client aborted'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted || this.#failed) controller.abort(new Error('client aborted'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const res = this.res;
    if (statusCode < 200) {
      // Interim responses Node's server can send; others (101 needs an upgrade) are not passed on.
      if (statusCode === 103) res.writeEarlyHints(earlyHints(headers));
      else if (statusCode === 102) res.writeProcessing();
      return;
    }
    this.#clearTimer();
    if (res.destroyed) return controller.abort(new Error('client aborted'));
    // An origin must not set (or shadow) Tollgate's own cookie.
    stripOwnSetCookie(headers);
    let out: OutgoingHttpHeaders;
    try {
      out = cleanResponseHeaders(headers, this.via);
      res.writeHead(statusCode, statusMessage, out);
    } catch (err) {
      // A head Node will not write (an invalid header value): the origin's answer is not valid.
      const e = err as NodeJS.ErrnoException;
      e.code = 'HPE_INVALID_HEADER_TOKEN';
      controller.abort(e);
      return;
    }
    // Head and the first body bytes of this read leave together, in one write.
    const sock = res.socket;
    if (sock !== null && !this.#corked) {
      this.#corked = true;
      sock.cork();
      process.nextTick(() => sock.uncork());
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const res = this.res;
    if (res.chunkedEncoding && hasAny(trailers)) res.addTrailers(trailers as OutgoingHttpHeaders as Record<string, string>);
    res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.#fail(err);
  }

  #fail(err: Error): void {
    this.#clearTimer();
    if (this.#failed) return;
    this.#failed = true;
    this.#controller?.abort(err);
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

/** earlyHints turns a 103's headers into what writeEarlyHints takes (Link is the one browsers use). */
function earlyHints(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = v;
  return out;
}

/** hasAny tells whether an object has an own key, without building the key list (run per response). */
function hasAny(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}
