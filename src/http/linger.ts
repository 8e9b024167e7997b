/**
 * linger: closing a connection after an early error reply without destroying the reply (RFC 9112 §9.6).
 *
 *   Client --(headers, body still coming)--> 413 / 431 / 429 written
 *     -> our side half-closed (FIN after the reply) -> what the client still sends is read and dropped
 *     -> closed when the client closes its side, or at a byte bound, an idle bound or a total bound
 *
 * Closing a socket that still has unread input makes the kernel answer with a reset, and a reset can
 * discard the reply before the client reads it; a client still writing its body sees EPIPE or
 * ECONNRESET instead of the status. So an early reply half-closes and keeps reading for a while, as
 * nginx's lingering_close and Apache's lingering close do. The bounds keep it cheap: every lingering
 * socket ends within LINGER.totalMs, and reading stops at LINGER.maxBytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** LingerBounds limit how much and how long a closing connection is read. */
export interface LingerBounds {
  /** maxBytes is the most that is read and dropped; past it the socket is destroyed. */
  readonly maxBytes: number;
  /** idleMs ends the linger when the client sends nothing for this long. */
  readonly idleMs: number;
  /** totalMs ends the linger this long after it began, however busy the client is. */
  readonly totalMs: number;
}

/**
 * LINGER are the bounds of every lingering close: room for a client to finish writing a body many
 * times any limit Tollgate sets (the SCIM limit is 1 MiB), within nginx's lingering_time (30 s) and
 * lingering_timeout (5 s) and a little above Apache's 2 s per read.
 */
export const LINGER: LingerBounds = Object.freeze({ maxBytes: 32 * 1024 * 1024, idleMs: 2_000, totalMs: 10_000 });

/**
 * BRIEF_LINGER are the bounds for a connection refused for being one too many (the per-IP cap): it
 * holds a socket while it lingers, which is what the cap guards, so it gets just long enough to read.
 */
export const BRIEF_LINGER: LingerBounds = Object.freeze({ maxBytes: 1024 * 1024, idleMs: 1_000, totalMs: 2_000 });

const lingering = new WeakSet<Socket>();

/** isLingering tells whether a socket has been answered and is closing; nothing more is written to it. */
export function isLingering(socket: Socket): boolean {
  return lingering.has(socket);
}

/**
 * lingerClose writes `reply` (if any), half-closes, and reads and drops what the client still sends
 * until it closes its side or a bound is reached, then destroys the socket. It is idempotent: a
 * second early error on a socket already closing writes nothing.
 */
export function lingerClose(socket: Socket, reply?: string | Buffer, bounds: LingerBounds = LINGER): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  // Detach the HTTP parser: nothing the client still sends is parsed, answered or buffered. Adding our
  // own 'data' listener makes Node's server stop feeding the parser from the handle directly.
  socket.removeAllListeners('data');
  let read = 0;
  const done = (): void => {
    clearTimeout(total);
    socket.destroy();
  };
  socket.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > bounds.maxBytes) done();
  });
  // An error (the client reset) ends the linger; the socket is already closed by then.
  socket.on('error', done);
  socket.once('close', () => clearTimeout(total));
  socket.setTimeout(bounds.idleMs, done);
  const total = setTimeout(done, bounds.totalMs);
  total.unref();
  flow(socket);
  // Called from inside the parser (a request handler), the rest of the chunk being parsed can still
  // pause the socket for the request's backpressure; start it again once that chunk is done.
  setImmediate(flow, socket);
  // With allowHalfOpen (Node's HTTP server sets it), end() sends the reply and our FIN but keeps
  // reading; the socket closes by itself once the client ends its side too.
  if (reply === undefined) socket.end();
  else socket.end(reply);
}

/** bodyPending tells whether a request still has body bytes the server has not read. */
export function bodyPending(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0);
}

/**
 * lingerAfter prepares a response that answers a request before its body was read (413, 408, or any
 * error while the body is still coming): the reply says `Connection: close`, and once it is sent the
 * socket lingers instead of being destroyed. A response to a fully read request is left alone.
 * Call it before the response's head is written.
 */
export function lingerAfter(res: ServerResponse): void {
  const socket = res.socket;
  if (socket === null || res.headersSent || !bodyPending(res.req)) return;
  res.setHeader('connection', 'close');
  // Node ends a `Connection: close` response with socket.destroySoon(), which destroys the socket as
  // soon as the reply is flushed and so resets it; here it lingers instead.
  socket.destroySoon = () => lingerClose(socket);
}

/**
 * flow makes a detached socket deliver data. The parser may have stopped the handle for backpressure
 * while the stream still counts a read as pending, so resume() alone would never start it again;
 * Socket#_read starts it, and does nothing when the handle is already reading.
 */
function flow(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resume();
  (socket as unknown as { _read(n: number): void })._read(0);
}
