/**
 * server: the explicit-proxy listener, one front door of the data plane.
 *
 *   Client -> listener (per-IP cap, HTTP parse, malformed requests) -> pipeline (handler.ts)
 *     GET http://host/..                 -> HTTP forwarder (forward.ts, pooled keep-alive)
 *     CONNECT host:443                   -> tunnel (tunnel.ts, spliced TCP)
 *     CONNECT host:443, inspected        -> TLS terminator (terminator.ts) -> pipeline again, door `decrypted`
 *     GET http://h/ Upgrade: websocket   -> WebSocket forwarder (websocket.ts)
 *     GET http://ip.<cloud>/             -> control-plane app (injected)
 *   every upstream connection: dial.ts (static hosts, DNS cache with TTLs, self guard)
 *
 * This module owns only what belongs to the listener: its sockets, their limits and its
 * shutdown. Everything a request needs is the pipeline's, the same for every door.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { normalizeIp } from '../config/ip.js';
import type { Config } from '../config/schema.js';
import { answerClientError, rawErrorResponse } from '../http/errors.js';
import { BRIEF_LINGER, lingerClose } from '../http/linger.js';
import type { AccessLog } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RuntimeRef } from '../runtime.js';
import type { DialOptions, SelfGuard } from './dial.js';
import { DnsCache } from './dnscache.js';
import { HttpForwarder } from './forward.js';
import { RequestPipeline, type OwnHostHandler, type ProxyAuth } from './handler.js';
import { TlsTerminator } from './terminator.js';
import { explicitArrival, TxLog, type Arrival, type CountedSocket } from './txlog.js';
import { WebSocketForwarder } from './websocket.js';

export type { OwnHostHandler, ProxyAuth, Redirect } from './handler.js';

/** ProxyDeps is everything the data plane is given by the composition root. */
export interface ProxyDeps {
  readonly auth: ProxyAuth;
  readonly runtime: RuntimeRef;
  readonly ownHost: OwnHostHandler;
  readonly accessLog: AccessLog;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly self: SelfGuard;
}

/** ProxyServer is the listener plus what it needs to shut down cleanly. */
export interface ProxyServer {
  readonly server: http.Server;
  /** Stop accepting, wait up to graceMs for in-flight work, then close what is left. */
  shutdown(graceMs: number): Promise<void>;
}

const ARRIVAL = Symbol('tollgate.arrival');
type DoorSocket = CountedSocket & { [ARRIVAL]?: Arrival };

/** createProxyServer builds the proxy listener (not yet listening). Limits are read from the initial config. */
export function createProxyServer(deps: ProxyDeps, config: Config): ProxyServer {
  const limits = config.limits;
  // Names are resolved with their TTLs honoured (dnscache.ts); dial still judges every address.
  const dial: DialOptions = { hosts: () => deps.runtime.current.hosts, self: deps.self, resolve: new DnsCache().resolve };
  // Upstream TLS (decrypted requests) is verified against the running activation's trust for the host.
  const trust = (host: string) => {
    const inspection = deps.runtime.current.inspection;
    if (inspection === null) throw new Error('TLS inspection is not set up in this activation');
    return inspection.upstream(host).context;
  };
  const httpForwarder = new HttpForwarder(dial, () => deps.runtime.current.config.limits, limits.upstreamIdleTimeoutMs, trust);
  const wsForwarder = new WebSocketForwarder(dial, limits.upstreamIdleTimeoutMs);
  const txlog = new TxLog(deps.accessLog, deps.metrics);
  const pipeline = new RequestPipeline({
    auth: deps.auth,
    runtime: deps.runtime,
    ownHost: deps.ownHost,
    metrics: deps.metrics,
    log: deps.log,
    txlog,
    dial,
    http: httpForwarder,
    ws: wsForwarder,
    intercept: { intercept: (socket, head, st, reply) => terminator.intercept(socket, head, st, reply) },
  });
  const terminator = new TlsTerminator(
    {
      log: deps.log,
      metrics: deps.metrics,
      txlog,
      http: (req, res, arrival) => pipeline.http(req, res, arrival),
      upgrade: (req, socket, head, arrival) => pipeline.upgrade(req, socket, head, arrival),
      splice: (socket, head, st) => pipeline.splice(socket, head, st),
    },
    config,
  );

  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0, // long uploads are bounded by the idle timeout, not a total
    keepAliveTimeout: limits.clientIdleTimeoutMs,
    connectionsCheckingInterval: Math.min(limits.headersTimeoutMs, 5000),
  });
  server.timeout = limits.clientIdleTimeoutMs;

  const perIp = new Map<string, number>();
  const sockets = new Set<Socket>();
  /** Sockets over the per-IP cap: already answered 429, and nothing they send is served. */
  const overCap = new WeakSet<Socket>();

  server.on('connection', (socket: DoorSocket) => {
    const arrival = explicitArrival(socket);
    socket[ARRIVAL] = arrival;
    const ip = arrival.peerIp;
    const n = (perIp.get(ip) ?? 0) + 1;
    perIp.set(ip, n);
    sockets.add(socket);
    deps.metrics.activeConnections.inc();
    socket.once('close', () => {
      sockets.delete(socket);
      deps.metrics.activeConnections.dec();
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    if (n > deps.runtime.current.config.limits.maxConnectionsPerIp) {
      deps.log.warn({ clientIp: ip, connections: n }, 'connection cap per client IP reached');
      overCap.add(socket);
      lingerClose(socket, rawErrorResponse(429, 'too_many_connections', 'Too many concurrent connections from your address.'), BRIEF_LINGER);
    }
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const e = answerClientError(err, socket);
    if (e === null) return;
    deps.log.info({ clientIp: normalizeIp(socket.remoteAddress ?? ''), code: err.code ?? '' }, 'malformed request');
    txlog.countRefusal(e.status, e.code);
  });

  const arrivalOf = (socket: DoorSocket): Arrival => socket[ARRIVAL] ?? explicitArrival(socket);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (overCap.has(req.socket)) return void req.socket.destroy();
    pipeline.http(req, res, arrivalOf(req.socket));
  });
  server.on('connect', (req: http.IncomingMessage, socket: DoorSocket, head: Buffer) => {
    if (overCap.has(socket)) return void socket.destroy();
    pipeline.connect(req, socket, head, arrivalOf(socket));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: DoorSocket, head: Buffer) => {
    if (overCap.has(socket)) return void socket.destroy();
    pipeline.upgrade(req, socket, head, arrivalOf(socket));
  });

  const closeForwarders = () => {
    terminator.close();
    void httpForwarder.close();
    wsForwarder.close();
  };
  return {
    server,
    shutdown(graceMs: number): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const t = setTimeout(() => {
          for (const s of sockets) s.destroy();
          closeForwarders();
        }, graceMs);
        t.unref();
        server.once('close', () => {
          clearTimeout(t);
          closeForwarders();
        });
      });
    },
  };
}
