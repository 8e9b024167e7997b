/**
 * tunnel: CONNECT as a spliced TCP tunnel (http-proxy does not do CONNECT).
 *
 *   Client -> Proxy (CONNECT host:443) -> dial -> "200 Connection Established" -> bytes both ways
 *
 * Half-close is honoured: when one side ends its writing, the other side's write half is ended
 * and bytes keep flowing the other way until it ends too. Either side erroring or idling past the
 * timeout tears both down.
 */
import { Socket } from 'node:net';
import { dialReading, type DialOptions } from './dial.js';

/**
 * READ_BUFFER_BYTES is a tunnel's read buffer, one per direction. 256 KiB: each doubling from 64
 * halved the reads and writes for bulk data; 128 KiB took about a quarter off the CPU per GiB of
 * 64, and 256 KiB (with reads that go on while the kernel takes each write whole) 0.88x the CPU per
 * MiB of 128 and 1.13x the download rate, in each of 3 A/B rounds, with tunnel setup unchanged. A
 * short or slow tunnel touches only the pages its bytes fill; a bulk one holds up to 512 KiB
 * (both directions) while it runs.
 */
const READ_BUFFER_BYTES = 256 * 1024;
/** ESTABLISHED is the CONNECT answer, encoded once rather than for every tunnel. */
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
/** SPARE_BUFFERS bounds the buffers kept for the next tunnels (16 MiB at most, resident only as far as they were filled). */
const SPARE_BUFFERS = 64;

/**
 * spare holds read buffers of tunnels that have closed. A fresh buffer costs its page
 * faults on first use, for every tunnel; short tunnels (a CONNECT, one request, close) paid that
 * more than they paid for their bytes. A buffer is returned only once its upstream socket is
 * closed (no read can land in it any more) and the last write from it has completed (the client
 * socket no longer refers to its bytes).
 */
const spare: Buffer[] = [];

function takeBuffer(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
}

function giveBack(buf: Buffer): void {
  if (spare.length < SPARE_BUFFERS) spare.push(buf);
}

/** OnRead is net's `onread` callback: n bytes are in buf; false stops reading until resume(). */
type OnRead = (n: number, buf: Uint8Array) => boolean;

/**
 * USER_READ is how a socket we did not create is switched to reading into a buffer of ours. net's
 * `onread` option does that for sockets we create (the upstream), but Node 20 takes it only in the
 * constructor, and the client's socket was created by the server that accepted it. Without it,
 * every read of an upload gets a fresh 64 KiB buffer: a page fault per 4 KiB and a collection of
 * external memory, four times the CPU of a download. The option stores the buffer and callback
 * under two symbols the read path checks; they are found here, once, on a probe socket, by the
 * values stored under them. When this Node stores them differently, null: uploads are piped.
 */
const USER_READ = ((): { readonly buffer: symbol; readonly callback: symbol } | null => {
  const buffer = Buffer.alloc(1);
  const callback: OnRead = () => false;
  // (The option is missing from @types/node's constructor options, though net.Socket takes it.)
  const probe = new Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof Socket>[0]) as Socket & Record<symbol, unknown>;
  const symbols = Object.getOwnPropertySymbols(probe);
  const b = symbols.find((k) => probe[k] === buffer);
  const c = symbols.find((k) => probe[k] === callback);
  probe.destroy();
  return b !== undefined && c !== undefined ? { buffer: b, callback: c } : null;
})();

/** uploadsReadIntoTunnelBuffer tells whether this Node takes the switch (tests hold it to true on the Node we ship on). */
export const uploadsReadIntoTunnelBuffer = USER_READ !== null;

/**
 * readInto makes socket read into buf, calling onRead for each read, as if it had been made with
 * `onread`; false (the socket is left as it was) when it cannot. Bytes already waiting in its
 * stream buffer are the caller's to take first.
 */
function readInto(socket: Socket, buf: Buffer, onRead: OnRead): boolean {
  const handle = (socket as Socket & { _handle?: { useUserBuffer?: (b: Uint8Array) => void } | null })._handle;
  if (USER_READ === null || handle == null || typeof handle.useUserBuffer !== 'function') return false;
  const s = socket as Socket & Record<symbol, unknown>;
  s[USER_READ.buffer] = buf;
  s[USER_READ.callback] = onRead;
  handle.useUserBuffer(buf);
  return true;
}

/**
 * endWriting ends what we send on one side of the tunnel, once the other side has nothing more to
 * give. When this side's own sending is over too (its end has been read) and every byte for it has
 * left our buffers, the socket is simply closed: close(2) still delivers what the kernel holds and
 * then the FIN, as shutdown(2) would, and the shutdown and Node's machinery around it are saved
 * (squid closes its tunnels this way). Otherwise the write half is ended and the other direction
 * keeps flowing: the half-close.
 */
function endWriting(socket: Socket): void {
  if (socket.destroyed || socket.writableEnded) return;
  if (socket.readableEnded && socket.writableLength === 0) socket.destroy();
  else socket.end();
}

/**
 * tookAll tells, just after a write, whether the kernel took all of it at once (Node tries the
 * write(2) first and, when every byte went, settles the write before returning), so nothing refers
 * to the read buffer any more and the next read can land in it straight away. Stopping and
 * restarting the read for every chunk costs an epoll change and Node's resume round trip each time,
 * which for a short tunnel is a part of its whole cost. The write's callback still comes (on the
 * next tick, before any further read), and finds nothing left to do.
 */
function tookAll(socket: Socket): boolean {
  return socket.writableLength === 0;
}

/** Relay is one direction of a tunnel: what its reading socket calls per read, and what its close calls. */
interface Relay {
  readonly onRead: OnRead;
  /** closed: the reading socket has closed, so no read can land in the buffer any more. */
  closed(): void;
}

/**
 * relay moves one direction's reads into `to`: each read is written on before the next read lands
 * in the same buffer, so reading waits for the write's callback (then `resume`), unless the kernel
 * took every byte at once (tookAll). The buffer goes back to the spares once the reading socket has
 * closed and no write refers to its bytes.
 */
function relay(to: Socket, buf: Buffer, resume: () => void): Relay {
  let writing = false;
  let readerClosed = false;
  const written = () => {
    if (!writing) return; // a write the kernel took at once: reading never stopped
    writing = false;
    if (readerClosed) giveBack(buf);
    else resume();
  };
  return {
    onRead: (n, b) => {
      if (to.destroyed) return false;
      writing = true;
      to.write(b.subarray(0, n), written);
      if (!tookAll(to)) return false;
      writing = false;
      return true;
    },
    closed: () => {
      readerClosed = true;
      if (!writing) giveBack(buf);
    },
  };
}

/** TunnelResult is reported once when the tunnel is over (or failed to open). */
export interface TunnelResult {
  /** Set when the upstream could not be reached; the caller answers the client. */
  readonly connectError: Error | null;
  /** Whether the tunnel was established (false: the client left while we were dialing, or dialing failed). */
  readonly opened: boolean;
  /** Bytes the client sent / received through the tunnel (after the CONNECT head). */
  readonly upBytes: number;
  readonly downBytes: number;
}

/**
 * TunnelOptions are the narrow settings one tunnel needs besides how to dial. They come apart from
 * the DialOptions so that the caller need not merge the two into a new object per tunnel: under a
 * CONNECT load, building `{ ...dial, connectTimeoutMs, ... }` for every tunnel left about 70 KB
 * more promoted out of each scavenge and cost about 15 µs a tunnel (a spread-free literal did not).
 */
export interface TunnelOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Whether the client is told `200 Connection Established` (a CONNECT); a transparent door's client is not. Default true. */
  readonly established?: boolean;
}

/**
 * openTunnel dials host:port and, once connected, tells the client and splices. `onOpen` is called
 * when bytes start flowing; `done` exactly once at the end.
 */
export function openTunnel(
  dialer: DialOptions,
  opts: TunnelOptions,
  client: Socket,
  head: Buffer,
  host: string,
  port: number,
  onOpen: () => void,
  done: (r: TunnelResult) => void,
): void {
  // The client may have left while the pipeline was deciding (a store lookup): nothing to dial for,
  // and its 'close' has already been and gone, so the end is reported here.
  if (client.destroyed) {
    done({ connectError: null, opened: false, upBytes: 0, downBytes: 0 });
    return;
  }
  let finished = false;
  let opened = false;
  // Downloads are the bulk direction: the origin's bytes are read into one buffer per tunnel and
  // written to the client before the next read (net's `onread`), instead of a fresh 64 KiB buffer
  // per read, whose page faults cost more CPU than the copying itself.
  const readBuf = takeBuffer();
  const down = relay(client, readBuf, () => {
    if (!upstream.destroyed) upstream.resume();
  });
  const upstream = dialReading(dialer, host, port, { buffer: readBuf, callback: down.onRead });
  // Bytes already read but still waiting in the stream buffer are the tunnel's too.
  const upStart = client.bytesRead - client.readableLength;
  const downStart = client.bytesWritten;

  const finish = (connectError: Error | null) => {
    if (finished) return;
    finished = true;
    done({ connectError, opened, upBytes: client.bytesRead - upStart, downBytes: client.bytesWritten - downStart });
  };

  // One socket timer serves both phases: the connect deadline, then the tunnel's idle limit.
  upstream.setTimeout(opts.connectTimeoutMs);
  upstream.on('timeout', () => {
    if (opened) return void upstream.destroy();
    const err: NodeJS.ErrnoException = new Error(`connect to ${host}:${port} timed out`);
    err.code = 'ETIMEDOUT';
    upstream.destroy(err);
  });

  upstream.once('connect', () => {
    if (upstream.destroyed) return; // refused by dial's check of the connected address; its error reports it
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    opened = true;
    onOpen();
    client.setNoDelay(true); // a no-op for the listener's own sockets (they have it already)
    upstream.setTimeout(opts.idleTimeoutMs);
    client.setTimeout(opts.idleTimeoutMs, () => client.destroy());
    if (opts.established !== false) client.write(ESTABLISHED);
    if (head.length > 0) upstream.write(head);
    spliceUploads();
    upstream.once('end', () => endWriting(client));
  });

  // Uploads, like downloads, are read into one buffer of the tunnel's and written on before the next
  // read. The client's end ends the upstream's writing: the half-close.
  let up: Relay | null = null;
  const spliceUploads = () => {
    // What arrived before the switch waits in the stream's buffer: it goes first.
    for (let c = client.read() as Buffer | null; c !== null; c = client.read() as Buffer | null) upstream.write(c);
    const buf = takeBuffer();
    const r = relay(upstream, buf, () => {
      if (!client.destroyed) client.resume();
    });
    const switched = readInto(client, buf, r.onRead);
    if (!switched) {
      giveBack(buf);
      // pipe() ends the destination when the source ends: the half-close.
      client.pipe(upstream);
      return;
    }
    up = r;
    // A client whose end was already read and handed out has nothing more to send.
    if (client.readableEnded) endWriting(upstream);
    else client.once('end', () => endWriting(upstream));
    client.resume();
  };

  upstream.on('error', (err) => {
    if (!opened) {
      finish(err);
      return;
    }
    client.destroy();
  });
  client.on('error', () => upstream.destroy());
  upstream.on('close', () => {
    down.closed();
    if (opened) {
      // Whatever the client has not yet read is lost anyway once the origin is gone.
      endWriting(client);
      if (client.readableEnded || client.destroyed) finish(null);
    }
  });
  client.on('close', () => {
    up?.closed();
    // Also covers a client that gives up while we are still dialing (finish reports opened: false).
    upstream.destroy();
    finish(null);
  });
}
