/**
 * plane: the one data plane every front door hands its requests to, built once per worker.
 *
 *   doors (server.ts: explicit; transparent.ts: HTTP by Host, TLS by SNI; terminator.ts: decrypted)
 *     -> pipeline (handler.ts + pipeline.ts) -> forwarders (forward.ts, tunnel.ts, websocket.ts)
 *     -> txlog.ts (one access-log line and one count per transaction)
 *   every upstream connection: dial.ts (static hosts, DNS cache with TTLs, self guard)
 *
 * Doors share the pipeline, the TLS terminator, the transaction log and the connection gate, so a
 * request is decided, forwarded and logged the same whichever door it came through.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AccessLog } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RuntimeRef } from '../runtime.js';
import type { DialOptions, SelfGuard } from './dial.js';
import { DnsCache } from './dnscache.js';
import { HttpForwarder } from './forward.js';
import { ConnectionGate } from './gate.js';
import { RequestPipeline, type OwnHostHandler, type ProxyAuth } from './handler.js';
import { TlsTerminator } from './terminator.js';
import { TxLog } from './txlog.js';
import { WebSocketForwarder } from './websocket.js';

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

/** DataPlane is what the doors share. */
export interface DataPlane {
  readonly deps: ProxyDeps;
  readonly pipeline: RequestPipeline;
  readonly txlog: TxLog;
  readonly gate: ConnectionGate;
  /** close ends inspected connections and the forwarders' pooled upstream connections. */
  close(): void;
}

/** createDataPlane builds the pipeline and its forwarders; limits are read from the initial config. */
export function createDataPlane(deps: ProxyDeps, config: Config): DataPlane {
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
  const wsForwarder = new WebSocketForwarder(dial, limits.upstreamIdleTimeoutMs, trust);
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
  return {
    deps,
    pipeline,
    txlog,
    gate: new ConnectionGate(deps.runtime, deps.metrics, deps.log),
    close() {
      terminator.close();
      void httpForwarder.close();
      wsForwarder.close();
    },
  };
}
