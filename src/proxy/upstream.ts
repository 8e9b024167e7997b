/**
 * upstream: pooled keep-alive HTTP/1.1 connections to origins, with the response framed by llhttp.
 *
 *   forward.ts -> UpstreamPool.request(head, body) -> idle connection for scheme://host:port, or a new one (dial.ts, TLS)
 *     -> request head in one write, body streamed (re-framed as chunked when its length is unknown)
 *     -> llhttp (Node's own HTTPParser, RESPONSE mode) -> ResponseSink: interim, head, data, end | error
 *     -> back to the pool when the response was complete and both sides keep the connection alive
 *
 * What is a message boundary (Content-Length, chunked with trailers, HEAD, 1xx, 204, 304, until close)
 * is decided by llhttp, the parser node:http uses, reached through node:_http_common: the same
 * well-kept code, without the client objects around it (http.ClientRequest or undici), which cost a
 * third of the proxy's CPU per request and 20-30 MiB of memory (the binding and the head: http1.ts).
 *
 * A pooled connection the origin closed while it sat idle fails the next request before any byte
 * of an answer; a GET, HEAD or OPTIONS without a body is then sent once more on a new connection.
 * Nothing is sent twice that might change anything at the origin.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { coded, LLHTTP, MAX_RESPONSE_HEADER_BYTES, requestHead, toHeaders, type Parser, type UpstreamRequest } from './http1.js';
import { Roster, slot } from './roster.js';

/** POOL_LINKS: one slot for every pool, made and dropped as origins come and go (see roster.ts). */
const POOL_LINKS = slot('upstream');

/** Methods that may be sent again when a pooled connection turns out to be dead (RFC 9110 §9.2.2, safe ones). */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** ResponseSink receives one exchange's answer. */
export interface ResponseSink {
  /** onRequestSent: the whole request, body included, has gone up (the origin's turn to answer). */
  onRequestSent(): void;
  /** onInterim gets a 1xx response (102, 103) before the final one. */
  onInterim(status: number, headers: IncomingHttpHeaders): void;
  /** onHead gets the final response's head; it returns false to refuse it (the exchange is then aborted). */
  onHead(status: number, message: string, headers: IncomingHttpHeaders): boolean;
  /** onData gets body bytes; false asks for no more until control.resume(). */
  onData(chunk: Buffer): boolean;
  onEnd(trailers: IncomingHttpHeaders | null): void;
  /** onError ends the exchange: nothing more comes after it. */
  onError(err: Error): void;
}

/** UpstreamControl is what a sink and the caller may do to an exchange in flight. */
export interface UpstreamControl {
  resume(): void;
  abort(): void;
}

/** Connect opens a connection to the pool's origin: `cb` gets the socket, ready to write (TLS done). */
export type Connect = (cb: (err: Error | null, socket: Socket | null) => void) => void;

/** Exchange is one request on one connection (several connections, when a dead pooled one is retried). */
class Exchange implements UpstreamControl {
  conn: Connection | null = null;
  done = false;
  /** Bytes of the answer seen (a dead pooled connection is told apart from a failing origin by it). */
  answered = false;
  bodySent: boolean;
  retried = false;
  /** unblock lets a client's upload flow again (into nothing) once this exchange no longer wants it. */
  unblock: (() => void) | null = null;

  constructor(
    readonly pool: UpstreamPool,
    readonly req: UpstreamRequest,
    /** The request line and headers, written as one piece on each connection that carries it. */
    readonly head: string,
    readonly sink: ResponseSink,
  ) {
    this.bodySent = req.body === null;
  }

  resume(): void {
    this.conn?.resumeReading();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    // A connection with an answer cut short cannot carry another one.
    this.conn?.kill(null);
    this.release();
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.release();
    this.sink.onError(err);
  }

  /** release lets go of the client's upload, whatever state it was left in. */
  release(): void {
    const u = this.unblock;
    this.unblock = null;
    u?.();
  }
}

/** Connection is one upstream socket with its parser; it carries one exchange at a time. */
class Connection {
  ex: Exchange | null = null;
  idleSince = 0;
  dead = false;
  /** reused is true once the connection has carried an exchange before the current one (set when it is pooled). */
  reused = false;
  /** The current response is the final one (not 1xx) and has completed. */
  #complete = false;
  #keepAlive = false;
  #interim = false;
  #lines: string[] = [];
  readonly #parser: Parser;

  constructor(
    readonly pool: UpstreamPool,
    readonly socket: Socket,
  ) {
    const p = new LLHTTP();
    p.initialize(LLHTTP.RESPONSE, {}, MAX_RESPONSE_HEADER_BYTES, 0);
    p[LLHTTP.kOnHeaders] = ((headers: string[]) => {
      for (const x of headers) this.#lines.push(x);
    }) as never;
    p[LLHTTP.kOnHeadersComplete] = ((_maj: number, _min: number, headers: string[] | null, _m: unknown, _u: unknown, status: number, message: string, upgrade: boolean, keepAlive: boolean) =>
      this.#onHead(headers ?? this.#take(), status, message, upgrade, keepAlive)) as never;
    p[LLHTTP.kOnBody] = ((chunk: Buffer) => this.#onBody(chunk)) as never;
    p[LLHTTP.kOnMessageComplete] = (() => this.#onComplete()) as never;
    this.#parser = p;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.kill(err));
    socket.on('close', () => this.kill(coded('the server closed the connection', 'ECONNRESET')));
    socket.on('timeout', () => this.kill(this.ex === null ? null : coded('the server sent nothing for too long', 'ETIMEDOUT')));
    // In flight this is the body's idle limit; an idle pooled connection is closed sooner by the sweep.
    socket.setTimeout(pool.idleTimeoutMs());
  }

  #take(): string[] {
    const l = this.#lines;
    this.#lines = [];
    return l;
  }

  send(ex: Exchange): void {
    this.ex = ex;
    ex.conn = this;
    this.#complete = false;
    this.#interim = false;
    this.socket.write(ex.head, 'latin1');
    if (ex.req.body !== null) this.#pipeBody(ex, ex.req.body);
    else ex.sink.onRequestSent();
  }

  /** #pipeBody streams the request body up with backpressure both ways; chunked when its length is unknown. */
  #pipeBody(ex: Exchange, body: NonNullable<UpstreamRequest['body']>): void {
    const s = this.socket;
    const src = body.stream;
    let paused = false;
    const onDrain = () => {
      paused = false;
      src.resume();
    };
    const onChunk = (c: Buffer) => {
      if (this.ex !== ex || c.length === 0) return;
      const ok = body.chunked ? (s.write(`${c.length.toString(16)}\r\n`, 'latin1'), s.write(c), s.write('\r\n', 'latin1')) : s.write(c);
      if (!ok && !paused) {
        paused = true;
        src.pause();
        s.once('drain', onDrain);
      }
    };
    // When the exchange ends before the upload does (an early answer, a failure), the rest of the
    // upload is read and dropped, so the client's connection is not left stalled.
    ex.unblock = () => {
      s.removeListener('drain', onDrain);
      if (paused) onDrain();
    };
    const onEnd = () => {
      cleanup();
      if (this.ex !== ex) return;
      if (body.chunked) s.write('0\r\n\r\n', 'latin1');
      ex.bodySent = true;
      ex.unblock = null;
      ex.sink.onRequestSent();
    };
    const onAbort = () => {
      cleanup();
      ex.abort();
    };
    const cleanup = () => {
      src.removeListener('data', onChunk);
      src.removeListener('end', onEnd);
      src.removeListener('error', onAbort);
      src.removeListener('aborted', onAbort);
    };
    src.on('data', onChunk);
    src.once('end', onEnd);
    src.once('error', onAbort);
    src.once('aborted', onAbort);
  }

  #onData(d: Buffer): void {
    const ex = this.ex;
    if (ex !== null) ex.answered = true;
    const r = this.#parser.execute(d);
    if (typeof r !== 'number') {
      // Bytes after a complete response (more than it declared) make the connection unusable, not the answer.
      if (this.#complete) return this.kill(null);
      return this.kill(coded(`the server's response is not valid HTTP (${r.code ?? 'parse error'})`, r.code ?? 'HPE_INVALID_CONSTANT'));
    }
    if (this.#complete) this.#finish();
  }

  #onEnd(): void {
    // A response delimited by the close ends here; any other is cut short.
    if (this.ex !== null && !this.#complete) {
      const r = this.#parser.finish();
      if (r === undefined && this.#complete) return this.#finish();
    }
    this.kill(coded('the server closed the connection before the response was complete', 'ECONNRESET'));
  }

  #onHead(raw: string[], status: number, message: string, upgrade: boolean, keepAlive: boolean): number {
    const ex = this.ex;
    if (ex === null || ex.done) return 1;
    if (status < 200) {
      // 100 Continue was answered to the client by its own server, so one the origin sends unasked is
      // not valid here; 101 needs an upgrade, which this forwarder does not make.
      if (status === 100 || status === 101 || upgrade) {
        this.kill(coded(`the server answered ${status}, which is not passed on here`, 'HPE_INVALID_CONSTANT'));
        return 1;
      }
      this.#interim = true;
      ex.sink.onInterim(status, toHeaders(raw));
      return 0;
    }
    this.#keepAlive = keepAlive;
    if (!ex.sink.onHead(status, message, toHeaders(raw))) {
      ex.abort();
      return 1;
    }
    // A HEAD answer has no body whatever its Content-Length says (RFC 9110 §9.3.2); llhttp cannot know the method.
    return ex.req.method === 'HEAD' ? 1 : 0;
  }

  #onBody(chunk: Buffer): void {
    const ex = this.ex;
    if (ex === null || ex.done) return;
    if (!ex.sink.onData(chunk)) this.#pauseReading();
  }

  /**
   * #pauseReading stops reading while the client catches up. The idle limit is the origin's, so it
   * does not run meanwhile: a client that stops reading is the client's timeout's to judge.
   */
  #pauseReading(): void {
    if (this.socket.isPaused()) return;
    this.socket.pause();
    this.socket.setTimeout(0);
  }

  /** resumeReading reads again after the client caught up (or the response ended). */
  resumeReading(): void {
    if (!this.socket.isPaused()) return;
    this.socket.setTimeout(this.pool.idleTimeoutMs());
    this.socket.resume();
  }

  #onComplete(): void {
    if (this.#interim) {
      this.#interim = false;
      this.#take();
      return;
    }
    this.#complete = true;
    const ex = this.ex;
    const trailers = this.#lines.length > 0 ? toHeaders(this.#take()) : null;
    if (ex === null || ex.done) return;
    ex.done = true;
    ex.sink.onEnd(trailers);
  }

  /** #finish runs after the parser has taken all it was given: the connection is pooled again, or closed. */
  #finish(): void {
    const ex = this.ex;
    this.ex = null;
    this.#complete = false;
    if (ex !== null) ex.conn = null;
    // The response is whole: a pause the client's backpressure asked for ends with it, or the next
    // exchange on this connection would never read its answer.
    this.resumeReading();
    // An early answer leaves the rest of the upload to be read and dropped.
    ex?.release();
    // An answer that came before the whole request body went up leaves the request unfinished on the wire.
    if (this.#keepAlive && ex !== null && ex.bodySent && !this.dead) this.pool.release(this);
    else this.kill(null);
  }

  /** kill closes the connection; an exchange still on it fails with `err`, or is retried on a new one when that is safe. */
  kill(err: Error | null): void {
    if (this.dead) return;
    this.dead = true;
    const ex = this.ex;
    this.ex = null;
    this.socket.destroy();
    this.pool.drop(this);
    // Never free a parser from inside one of its own callbacks.
    setImmediate(() => this.#parser.close());
    if (ex === null || ex.done) return;
    ex.conn = null;
    ex.release();
    if (err !== null && !ex.answered && !ex.retried && ex.req.body === null && RETRYABLE.has(ex.req.method) && this.reused) {
      ex.retried = true;
      this.pool.fresh(ex);
      return;
    }
    ex.fail(err ?? coded('the connection to the server was closed', 'ECONNRESET'));
  }
}

/** UpstreamPool holds the connections to one origin (scheme, host, port). */
export class UpstreamPool {
  readonly #idle: Connection[] = [];
  readonly #all = new Roster<Connection>(POOL_LINKS);
  /** Connections being opened (dial, TLS): the pool is in use while any is. */
  #connecting = 0;
  #closed = false;

  constructor(
    private readonly connect: Connect,
    /** How long an exchange's connection may be silent (read from the running config each time). */
    readonly idleTimeoutMs: () => number,
  ) {}

  get size(): number {
    return this.#all.size + this.#connecting;
  }

  /** request sends one request; the sink gets the answer. The control aborts it or resumes a paused body. */
  request(req: UpstreamRequest, sink: ResponseSink): UpstreamControl {
    let head: string;
    try {
      head = requestHead(req);
    } catch (err) {
      const refused = new Exchange(this, req, '', sink);
      refused.fail(err as Error);
      return refused;
    }
    const ex = new Exchange(this, req, head, sink);
    const c = this.#idle.pop();
    if (c !== undefined) c.send(ex);
    else this.fresh(ex);
    return ex;
  }

  /** fresh sends an exchange on a new connection. */
  fresh(ex: Exchange): void {
    this.#connecting++;
    this.connect((err, socket) => {
      this.#connecting--;
      if (ex.done || this.#closed) {
        socket?.destroy();
        if (!ex.done) ex.fail(coded('the proxy is shutting down', 'ECONNRESET'));
        return;
      }
      if (err !== null || socket === null) return ex.fail(err ?? coded('no connection', 'ECONNREFUSED'));
      const c = new Connection(this, socket);
      this.#all.add(c);
      c.send(ex);
    });
  }

  release(c: Connection): void {
    c.idleSince = Date.now();
    c.reused = true;
    this.#idle.push(c);
  }

  drop(c: Connection): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** sweep closes connections idle since before `before` (ms since the epoch). */
  sweep(before: number): void {
    // Oldest first: #idle is a stack, so the oldest sit at the bottom.
    while (this.#idle.length > 0 && this.#idle[0]!.idleSince < before) this.#idle[0]!.kill(null);
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#all.values()) c.kill(null);
  }
}
