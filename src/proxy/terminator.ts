/**
 * terminator: the TLS-terminating front door, for tunnels the inspection rules select.
 *
 *   CONNECT host:443 -> pipeline: inspect -> "200" -> peek ClientHello (SNI) -> leaf for the name
 *     -> TLS with the client -> HTTP/1.1 server (keep-alive) -> each request: pipeline.http, door `decrypted`
 *                                                            -> forwarder: https to the origin, verified
 *
 * A door of its own, like the explicit listener: it only peeks, terminates, parses and says where
 * requests came from (the tunnel's client, its SNI, `decrypted: true`). Every decision about a
 * decrypted request is the pipeline's. The tunnel keeps its own access-log line, written when the
 * connection is over; each decrypted request gets one too.
 *
 * What is not inspected closes with a log line and a count: bytes that are not a ClientHello
 * (unless `inspection.nonTls: tunnel`), a name no certificate can carry, an SNI that names another
 * host than the CONNECT, and bytes after the handshake that are not HTTP/1.x. A client that breaks
 * off the handshake over our certificate (the CA is not installed) is logged once per client and
 * host, and counted.
 */
import http from 'node:http';
import { isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/schema.js';
import { answerClientError, rawErrorResponse } from '../http/errors.js';
import type { Metrics } from '../metrics.js';
import type { Leaf } from '../tls/leaf.js';
import { peekClientHello } from './clienthello.js';
import { Roster, slot } from './roster.js';

/** TERMINATOR_LINKS: the terminator's own links, beside the gate's on the same sockets (see roster.ts). */
const TERMINATOR_LINKS = slot('terminator');
import type { Interceptor } from './handler.js';
import type { Arrival, CountedSocket, TxLog, TxState } from './txlog.js';

/** ESTABLISHED is the CONNECT answer, sent before the client's ClientHello can come. */
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
/** Largest ClientHello taken (post-quantum key shares make them a few KiB). */
const MAX_HELLO_BYTES = 16 * 1024;
/** TLS alerts a client sends when it does not accept our certificate (RFC 8446 §6.2). */
const CERT_ALERTS = /alert (bad certificate|unsupported certificate|certificate revoked|certificate expired|certificate unknown|unknown ca)|alert number (42|43|44|45|46|48)\b/i;

/** TerminatorDeps is what the door needs: the pipeline's entries for what it decrypts, and where to log. */
export interface TerminatorDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly txlog: TxLog;
  /** The pipeline's entry for a decrypted request. */
  readonly http: (req: http.IncomingMessage, res: http.ServerResponse, arrival: Arrival) => void;
  /** The pipeline's entry for a decrypted upgrade request (WebSocket). */
  readonly upgrade: (req: http.IncomingMessage, socket: Socket, head: Buffer, arrival: Arrival) => void;
  /** splice passes a tunnel on untouched (non-TLS bytes, with `inspection.nonTls: tunnel`). */
  readonly splice: (socket: CountedSocket, head: Buffer, st: TxState) => void;
}

const ARRIVAL = Symbol('tollgate.decrypted');
type DecryptedSocket = TLSSocket & { [ARRIVAL]?: Arrival; [REQUESTS]?: number };
const REQUESTS = Symbol('tollgate.requests');

/** TlsTerminator terminates inspected tunnels; one per proxy listener. */
export class TlsTerminator implements Interceptor {
  readonly #server: http.Server;
  readonly #sockets = new Roster<Socket>(TERMINATOR_LINKS);
  /** Who has refused our certificate for which host, so each is logged once (bounded). */
  readonly #rejected = new LRUCache<string, true>({ max: 10_000, ttl: 3_600_000 });

  constructor(
    private readonly deps: TerminatorDeps,
    config: Config,
  ) {
    const limits = config.limits;
    // Not listening: the door hands it each decrypted connection.
    this.#server = http.createServer({
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: limits.clientIdleTimeoutMs,
      connectionsCheckingInterval: Math.min(limits.headersTimeoutMs, 5000),
    });
    this.#server.timeout = limits.clientIdleTimeoutMs;
    const arrivalOf = (s: Socket) => (s as DecryptedSocket)[ARRIVAL]!;
    const counted = (s: Socket) => {
      const d = s as DecryptedSocket;
      d[REQUESTS] = (d[REQUESTS] ?? 0) + 1;
    };
    this.#server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      counted(req.socket);
      deps.http(req, res, arrivalOf(req.socket));
    });
    this.#server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      counted(socket);
      deps.upgrade(req, socket, head, arrivalOf(socket));
    });
    this.#server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
      counted(socket);
      socket.end(rawErrorResponse(405, 'connect_in_tls', 'CONNECT is not taken inside an inspected tunnel.'));
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const d = socket as DecryptedSocket;
      if ((d[REQUESTS] ?? 0) === 0 && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' && err.code !== 'ECONNRESET') {
        // The first bytes inside TLS are not HTTP/1.x (HTTP/2 without ALPN, another protocol).
        const a = d[ARRIVAL];
        deps.log.info({ clientIp: a?.peerIp, sni: a?.tls?.sni, code: err.code ?? '' }, 'inspection: not HTTP inside TLS, closed');
        deps.metrics.inspectionClosed.inc({ reason: 'not_http' });
        d[REQUESTS] = 1; // reported once
        socket.destroy();
        return;
      }
      const e = answerClientError(err, socket);
      if (e !== null) deps.txlog.countRefusal(e.status, e.code);
    });
  }

  intercept(socket: CountedSocket, head: Buffer, st: TxState, reply: boolean): void {
    const tx = st.tx;
    const rt = tx.rt;
    const limits = rt.config.limits;
    const minter = rt.inspection?.minter;
    this.#sockets.add(socket);
    this.deps.metrics.activeTunnels.inc();
    let closedWhy = '';
    let spliced = false;
    socket.once('close', () => {
      if (spliced) return; // the plain tunnel reports it
      this.#sockets.delete(socket);
      this.deps.metrics.activeTunnels.dec();
      if (closedWhy !== '') {
        tx.action = 'blocked';
        tx.reason = closedWhy;
      }
      this.deps.txlog.record(st, socket, reply ? 200 : 0);
    });
    socket.on('error', () => socket.destroy());
    const close = (reason: string, msg: string, extra: object = {}) => {
      closedWhy = reason;
      this.deps.metrics.inspectionClosed.inc({ reason });
      this.deps.log.info({ clientIp: tx.clientIp, host: tx.host, reason, ...extra }, msg);
      socket.destroy();
    };
    if (minter == null) return close('no_ca', 'inspection: no CA in this activation, closed');
    if (reply) socket.write(ESTABLISHED);

    // Read until the ClientHello is whole (it is handed to TLS as it came), within the head timeout.
    let buffered = head;
    const timer = setTimeout(() => close('hello_timeout', 'inspection: no ClientHello in time, closed'), limits.headersTimeoutMs);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      examine();
    };
    const examine = () => {
      const peek = peekClientHello(buffered, MAX_HELLO_BYTES);
      if (peek.kind === 'more') return;
      socket.off('data', onData);
      socket.pause();
      clearTimeout(timer);
      if (peek.kind === 'not-tls') {
        if (rt.config.inspection.nonTls === 'tunnel') {
          tx.reason = 'not_tls_tunneled';
          spliced = true;
          this.#sockets.delete(socket);
          this.deps.metrics.activeTunnels.dec();
          return this.deps.splice(socket, buffered, st);
        }
        return close('not_tls', 'inspection: not TLS, closed', { why: peek.reason });
      }
      if (peek.kind === 'bad-sni') return close('bad_sni', 'inspection: the ClientHello names no valid host, closed');
      const name = peek.kind === 'sni' ? peek.name : tx.host;
      // The tunnel's rules were decided for the CONNECT host; a hello for another name is not that tunnel.
      if (peek.kind === 'sni' && isIP(tx.host) === 0 && name !== tx.host) {
        return close('sni_mismatch', 'inspection: SNI names another host than the tunnel, closed', { sni: name });
      }
      const start = (leaf: Leaf) => {
        if (socket.destroyed) return;
        this.#terminate(socket, buffered, leaf, st, peek.kind === 'sni' ? name : '', name);
      };
      const cached = minter.cached(name);
      if (cached !== undefined) return start(cached);
      minter.leaf(name).then(start, (err: Error) => close('leaf_failed', 'inspection: no certificate for the host, closed', { err: err.message }));
    };
    socket.on('data', onData);
    examine();
  }

  /** #terminate runs TLS on the client socket with the host's leaf and hands the result to the HTTP server. */
  #terminate(socket: CountedSocket, hello: Buffer, leaf: Leaf, st: TxState, sni: string, name: string): void {
    const tx = st.tx;
    const limits = tx.rt.config.limits;
    // Bytes already read are given back, and TLS takes them as received.
    socket.unshift(hello);
    const tls: DecryptedSocket = new TLSSocket(socket, { isServer: true, secureContext: leaf.context, ALPNProtocols: ['http/1.1'] });
    tls[ARRIVAL] = {
      door: 'decrypted',
      // The tunnel's client (X-Forwarded-For on the CONNECT already applied): decrypted requests are theirs.
      peerIp: tx.clientIp,
      forwardingMethod: st.arrival.forwardingMethod,
      tls: { protocol: 'SSL', decrypted: true, sni },
      tunnel: { name, host: tx.host, port: tx.port },
    };
    let secure = false;
    let failed = false;
    const handshake = setTimeout(() => {
      failed = true;
      this.deps.metrics.inspectionClosed.inc({ reason: 'handshake_timeout' });
      tls.destroy();
    }, limits.headersTimeoutMs);
    tls.once('secure', () => {
      secure = true;
      clearTimeout(handshake);
      this.#server.emit('connection', tls);
    });
    tls.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(handshake);
      if (!secure && !failed) this.#handshakeFailed(tx.clientIp, name, err);
      failed = true;
      tls.destroy();
    });
    tls.once('close', () => {
      clearTimeout(handshake);
      // A client that sent its hello, got our certificate and hung up without a word refused it too.
      if (!secure && !failed) this.#handshakeFailed(tx.clientIp, name, null);
      socket.destroy();
    });
  }

  /**
   * #handshakeFailed: an alert about our certificate means the client does not trust our CA; that
   * is logged once per client and host and counted. Other failures (versions, ciphers) are logged.
   */
  #handshakeFailed(clientIp: string, host: string, err: NodeJS.ErrnoException | null): void {
    const message = err?.message ?? '';
    if (err === null || CERT_ALERTS.test(message)) {
      this.deps.metrics.inspectionClientRejected.inc();
      const key = `${clientIp} ${host}`;
      if (this.#rejected.has(key)) return;
      this.#rejected.set(key, true);
      this.deps.log.warn({ clientIp, host, detail: message.slice(0, 200) }, 'inspection: client rejected certificate');
      return;
    }
    this.deps.metrics.inspectionClosed.inc({ reason: 'handshake_failed' });
    this.deps.log.info({ clientIp, host, code: err.code ?? '', detail: message.slice(0, 200) }, 'inspection: TLS handshake failed');
  }

  /** close ends every inspected connection (shutdown). */
  close(): void {
    for (const s of this.#sockets.values()) s.destroy();
    this.#server.close();
  }
}
