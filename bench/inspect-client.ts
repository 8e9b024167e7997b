/**
 * inspect-client: the client side of the inspection bench, run in the bench process on the load core.
 *
 *   Client -> Proxy (CONNECT host:port) -> "200" -> TLS (SNI host, trusting one CA) -> HTTP/1.1 GETs / POSTs
 *
 * Through an inspected tunnel the TLS peer is Tollgate's terminator, so the client trusts Tollgate's
 * CA only; through a plain tunnel it is the origin, so the client trusts the origin's CA only. A
 * handshake that does not verify (chain and name) fails, and the bench counts it as an error: a
 * figure measured over failures would be worthless. Trust is a SecureContext given per connection,
 * never NODE_TLS_REJECT_UNAUTHORIZED.
 *
 * Responses are framed by Content-Length only (what tls-origin.ts sends, and what Tollgate passes
 * on); anything else is an error. Requests on a connection go one at a time.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type SecureContext, type TLSSocket } from 'node:tls';
import { writeBytes } from './bytes.js';
import type { HostPort } from './proc.js';

/** Route is where a connection goes: through which proxy, to which authority, trusting what. */
export interface Route {
  readonly proxy: HostPort;
  /** The CONNECT target and Host header, `name:port`. */
  readonly authority: string;
  /** The SNI and the name the certificate must carry. */
  readonly servername: string;
  readonly trust: SecureContext;
}

/** Response is the part of an answer the bench checks. */
export interface Response {
  readonly status: number;
  readonly bodyBytes: number;
}

/** SMALL_BYTES is the body of the origin's `GET /small` (tls-origin.ts), what every keep-alive answer must carry. */
export const SMALL_BYTES = 1024;

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

/**
 * openTls sends CONNECT through the proxy, and once it is answered 200 runs TLS over the tunnel.
 * It resolves when the handshake has verified, and rejects on any other answer, on a handshake
 * that does not verify, or after timeoutMs.
 */
export function openTls(route: Route, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: route.proxy.host, port: route.proxy.port, noDelay: true });
    let tls: TLSSocket | null = null;
    const fail = (err: Error) => {
      clearTimeout(timer);
      tls?.destroy();
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`CONNECT ${route.authority} and handshake timed out`)), timeoutMs);
    const closed = () => fail(new Error(`the proxy closed before answering CONNECT ${route.authority}`));
    sock.once('error', fail);
    sock.once('close', closed);
    sock.once('connect', () => sock.write(`CONNECT ${route.authority} HTTP/1.1\r\nHost: ${route.authority}\r\n\r\n`));
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end === -1) {
        if (head.length > MAX_HEAD) fail(new Error('CONNECT answer head too large'));
        return;
      }
      sock.off('data', onData);
      sock.off('close', closed);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, 64))?.[1];
      if (status !== '200') return fail(new Error(`CONNECT ${route.authority} answered ${status ?? 'garbage'}`));
      // Nobody speaks before the ClientHello; whatever came early belongs to TLS.
      const early = head.subarray(end + HEAD_END.length);
      if (early.length > 0) sock.unshift(early);
      sock.off('error', fail);
      tls = tlsConnect({ socket: sock, servername: route.servername, secureContext: route.trust, ALPNProtocols: ['http/1.1'] });
      tls.once('error', fail);
      tls.once('secureConnect', () => {
        if (!tls!.authorized) return fail(new Error(`handshake not verified: ${String(tls!.authorizationError)}`));
        clearTimeout(timer);
        tls!.off('error', fail);
        resolve(tls!);
      });
    };
    sock.on('data', onData);
  });
}

/** closeTls ends our side and resolves when the connection is closed (destroying it after timeoutMs). */
export function closeTls(sock: TLSSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve();
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.on('error', () => sock.destroy());
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    // The peer's close is only seen by a socket that reads.
    sock.resume();
    sock.end();
  });
}

/** HandshakeResult: connections set up (CONNECT, verified handshake) and closed; setup time from CONNECT to verified. */
export interface HandshakeResult {
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly p50Ms: number;
}

/** handshakes opens n connections, `concurrency` at a time, each along the route `next()` gives, and closes each. */
export async function handshakes(next: () => Route, n: number, concurrency: number, timeoutMs: number): Promise<HandshakeResult> {
  const start = performance.now();
  let started = 0;
  let ok = 0;
  let errors = 0;
  let firstError: string | null = null;
  const setupMs: number[] = [];
  const loop = async () => {
    while (started < n) {
      started++;
      const r = next();
      const t0 = performance.now();
      try {
        const sock = await openTls(r, timeoutMs);
        setupMs.push(performance.now() - t0);
        await closeTls(sock, timeoutMs);
        ok++;
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { ok, errors, firstError, elapsedMs: performance.now() - start, p50Ms: percentile(setupMs, 50) };
}

/** HttpConn sends requests on one verified TLS connection, one at a time, and reads the answers. */
export class HttpConn {
  #head: Buffer | null = null;
  #status = 0;
  /** Body bytes still to come; -1 while the head is read. */
  #left = -1;
  #got = 0;
  #waiting: { resolve: (r: Response) => void; reject: (e: Error) => void } | null = null;
  #broken: Error | null = null;

  constructor(readonly sock: TLSSocket) {
    sock.on('data', (chunk: Buffer) => this.#feed(chunk));
    sock.on('error', (err) => this.#fail(err));
    sock.on('close', () => this.#fail(new Error('connection closed')));
  }

  /** request writes a request head (and `upload` bytes of body after it) and resolves with the answer. */
  request(head: Buffer, upload = 0): Promise<Response> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#head = null;
      this.#left = -1;
      this.#got = 0;
      this.sock.write(head);
      if (upload > 0) writeBytes(this.sock, upload, () => {});
    });
  }

  close(timeoutMs: number): Promise<void> {
    return closeTls(this.sock, timeoutMs);
  }

  #fail(err: Error): void {
    this.#broken ??= err;
    const w = this.#waiting;
    this.#waiting = null;
    w?.reject(err);
    this.sock.destroy();
  }

  #feed(chunk: Buffer): void {
    if (this.#waiting === null) return this.#fail(new Error('bytes arrived with no request outstanding'));
    if (this.#left === -1) {
      const buf: Buffer = this.#head === null ? chunk : Buffer.concat([this.#head, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        this.#head = buf;
        if (buf.length > MAX_HEAD) this.#fail(new Error('response head too large'));
        return;
      }
      const text = buf.toString('latin1', 0, end + 2);
      const length = /\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*\r\n/i.exec(text);
      if (length === null || /\r\ntransfer-encoding:/i.test(text)) return this.#fail(new Error(`response not framed by Content-Length: ${text.split('\r\n')[0]}`));
      this.#status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      this.#left = Number(length[1]);
      chunk = buf.subarray(end + HEAD_END.length);
    }
    this.#got += chunk.length;
    this.#left -= chunk.length;
    if (this.#left < 0) return this.#fail(new Error('bytes after the response body'));
    if (this.#left === 0) {
      const w = this.#waiting;
      this.#waiting = null;
      w.resolve({ status: this.#status, bodyBytes: this.#got });
    }
  }
}

/** getHead is the head of `GET path` for an authority. */
export function getHead(authority: string, path: string): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`, 'latin1');
}

/** postHead is the head of `POST path` with a body of `bytes`. */
export function postHead(authority: string, path: string, bytes: number): Buffer {
  return Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${authority}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\n\r\n`, 'latin1');
}

/** KeepAliveResult: requests sent and answered as expected over the run, and their latency. */
export interface KeepAliveResult {
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** KeepAlivePool holds open connections that each send GETs back to back while it runs. */
export class KeepAlivePool {
  private constructor(
    readonly conns: readonly HttpConn[],
    readonly head: Buffer,
    readonly bodyBytes: number,
  ) {}

  /**
   * open sets up `n` connections along the route, each sending one request (not counted in a run),
   * so a run starts with every connection, and Tollgate's upstream connection for it, ready.
   * `sent` is incremented for each of those first requests.
   */
  static async open(route: Route, n: number, path: string, bodyBytes: number, timeoutMs: number, sent: { n: number }): Promise<KeepAlivePool> {
    const head = getHead(route.authority, path);
    const opened = await Promise.allSettled(
      Array.from({ length: n }, async () => {
        const c = new HttpConn(await openTls(route, timeoutMs));
        sent.n++;
        const r = await c.request(head);
        if (r.status !== 200 || r.bodyBytes !== bodyBytes) throw new Error(`first request answered ${r.status} with ${r.bodyBytes} bytes`);
        return c;
      }),
    );
    const conns = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(conns.map((c) => c.close(timeoutMs)));
      throw failed.reason as Error;
    }
    return new KeepAlivePool(conns, head, bodyBytes);
  }

  /** run sends requests on every connection, one in flight on each, until durationMs has passed. */
  async run(durationMs: number): Promise<KeepAliveResult> {
    const start = performance.now();
    const deadline = start + durationMs;
    let sent = 0;
    let ok = 0;
    let errors = 0;
    let firstError: string | null = null;
    const latencies: number[] = [];
    await Promise.all(
      this.conns.map(async (c) => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          sent++;
          try {
            const r = await c.request(this.head);
            latencies.push(performance.now() - t0);
            if (r.status === 200 && r.bodyBytes === this.bodyBytes) ok++;
            else {
              errors++;
              firstError ??= `answered ${r.status} with ${r.bodyBytes} bytes`;
            }
          } catch (err) {
            errors++;
            firstError ??= (err as Error).message;
            return; // the connection is gone
          }
        }
      }),
    );
    return { sent, ok, errors, firstError, elapsedMs: performance.now() - start, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
  }

  close(timeoutMs: number): Promise<void> {
    return Promise.all(this.conns.map((c) => c.close(timeoutMs))).then(() => {});
  }
}

/** BulkResult: the bytes moved and the time from the request to the last byte (upload: to the answer). */
export interface BulkResult {
  readonly bytes: number;
  readonly elapsedMs: number;
}

/** download asks for `bytes` of body on an open connection and times it to the last byte. */
export async function download(c: HttpConn, authority: string, bytes: number): Promise<BulkResult> {
  const t0 = performance.now();
  const r = await c.request(getHead(authority, `/bulk/${bytes}`));
  const elapsedMs = performance.now() - t0;
  if (r.status !== 200 || r.bodyBytes !== bytes) throw new Error(`download answered ${r.status} with ${r.bodyBytes} of ${bytes} bytes`);
  return { bytes, elapsedMs };
}

/** upload sends `bytes` of body to the origin's sink on an open connection and times it to the answer. */
export async function upload(c: HttpConn, authority: string, bytes: number): Promise<BulkResult> {
  const t0 = performance.now();
  const r = await c.request(postHead(authority, '/sink', bytes), bytes);
  const elapsedMs = performance.now() - t0;
  if (r.status !== 200 || r.bodyBytes !== 3) throw new Error(`upload answered ${r.status} with ${r.bodyBytes} bytes, not OK`);
  return { bytes, elapsedMs };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
