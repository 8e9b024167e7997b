/**
 * listener: an HTTP front door. Two doors are built from it, and differ only in where they say a
 * request came from:
 *
 *   explicit (listeners.proxy):            GET http://host/.., CONNECT host:443, WebSocket, our own hosts
 *   transparent (listeners.transparentHttp): GET /path + Host, routed or REDIRECTed to us; no CONNECT
 *
 *   accept -> gate (per-IP cap) -> HTTP parse (header size, timeouts) -> pipeline with the door's Arrival
 *
 * It owns only what belongs to a listener: its sockets' limits and its malformed-request answers.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { normalizeIp } from '../config/ip.js';
import type { Config } from '../config/schema.js';
import { answerClientError, rawErrorResponse } from '../http/errors.js';
import { BRIEF_LINGER, lingerClose } from '../http/linger.js';
import type { DataPlane } from './plane.js';
import type { Arrival, CountedSocket } from './txlog.js';

const ARRIVAL = Symbol('tollgate.arrival');
type DoorSocket = CountedSocket & { [ARRIVAL]?: Arrival };

/** HttpDoor says what kind of HTTP door a listener is. */
export interface HttpDoor {
  /** arrival says where a new connection's requests come from (read once, when it is accepted). */
  arrival(socket: Socket): Arrival;
  /** connect: CONNECT is taken (the explicit proxy); otherwise it is refused with 405. */
  readonly connect: boolean;
}

/** createHttpListener builds one HTTP door (not yet listening). Limits are read from the initial config. */
export function createHttpListener(plane: DataPlane, config: Config, door: HttpDoor): http.Server {
  const { pipeline, gate, txlog, deps } = plane;
  const limits = config.limits;
  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0, // long uploads are bounded by the idle timeout, not a total
    keepAliveTimeout: limits.clientIdleTimeoutMs,
    connectionsCheckingInterval: Math.min(limits.headersTimeoutMs, 5000),
  });
  server.timeout = limits.clientIdleTimeoutMs;

  /** Sockets over the per-IP cap: already answered 429, and nothing they send is served. */
  const overCap = new WeakSet<Socket>();
  server.on('connection', (socket: DoorSocket) => {
    const arrival = door.arrival(socket);
    socket[ARRIVAL] = arrival;
    if (gate.admit(socket, arrival.peerIp)) return;
    overCap.add(socket);
    lingerClose(socket, rawErrorResponse(429, 'too_many_connections', 'Too many concurrent connections from your address.'), BRIEF_LINGER);
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const e = answerClientError(err, socket);
    if (e === null) return;
    deps.log.info({ clientIp: normalizeIp(socket.remoteAddress ?? ''), code: err.code ?? '' }, 'malformed request');
    txlog.countRefusal(e.status, e.code);
  });

  const arrivalOf = (socket: DoorSocket): Arrival => socket[ARRIVAL] ?? door.arrival(socket);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (overCap.has(req.socket)) return void req.socket.destroy();
    pipeline.http(req, res, arrivalOf(req.socket));
  });
  server.on('connect', (req: http.IncomingMessage, socket: DoorSocket, head: Buffer) => {
    if (overCap.has(socket)) return void socket.destroy();
    if (door.connect) return pipeline.connect(req, socket, head, arrivalOf(socket));
    txlog.countRefusal(405, 'connect_not_here');
    socket.on('error', () => socket.destroy());
    socket.end(rawErrorResponse(405, 'connect_not_here', 'This port takes routed web traffic, not CONNECT; use the proxy port.'));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: DoorSocket, head: Buffer) => {
    if (overCap.has(socket)) return void socket.destroy();
    pipeline.upgrade(req, socket, head, arrivalOf(socket));
  });
  return server;
}
