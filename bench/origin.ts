/**
 * origin: the benchmark's upstream, run as its own process pinned next to the load generator.
 *
 *   load (core 1) -> proxy (core 0) -> origin (core 1)
 *
 * It has two loopback listeners and prints `{"http":PORT,"tcp":PORT}` once both listen:
 *
 * - http: a minimal HTTP/1.1 responder on raw `net`. It finds the end of each request head
 *   (`\r\n\r\n`) and answers with one canned 200 of BODY_BYTES (or `--body N`); `Connection:
 *   close` in the head makes it close after answering. It takes no request bodies: the bench sends
 *   none. Skipping node:http's parser and response object keeps its cost per request at a few µs,
 *   so the origin is never what limits a proxy on the other core (the direct figures show the
 *   rig's ceiling).
 * - tcp: a source and sink for bulk tunnels and a target for CONNECT setup. A connection whose
 *   first line is `SEND <n>\n` gets n bytes and an end; one whose first line is `RECV <n>\n` has n
 *   bytes read and then gets `OK\n` and an end; anything else is discarded, and the origin ends its
 *   side when the client ends its own.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { writeBytes } from './bytes.js';

/** BODY_BYTES is the size of the small GET response body; `--body N` sets another (bench:scale uses 1 KiB). */
export const BODY_BYTES = 128;
const bodyBytes = Number(parseArgs({ options: { body: { type: 'string' } } }).values.body ?? BODY_BYTES);
if (!Number.isInteger(bodyBytes) || bodyBytes < 1 || bodyBytes > 1 << 20) throw new Error('--body must be 1..1048576 bytes');
const MAX_HEAD = 64 * 1024;

function response(close: boolean): Buffer {
  const body = 'b'.repeat(bodyBytes - 1) + '\n';
  const conn = close ? 'Connection: close\r\n' : '';
  return Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${bodyBytes}\r\n${conn}\r\n${body}`, 'latin1');
}
const KEEP = response(false);
const CLOSE = response(true);
const closeRe = /\r\nconnection:[^\r]*\bclose\b/i;

/** serveHttp answers every complete request head on one connection, pipelined or not. */
function serveHttp(sock: Socket): void {
  let pending = '';
  sock.setNoDelay(true);
  sock.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    let answered = 0;
    let close = false;
    let end: number;
    while (!close && (end = pending.indexOf('\r\n\r\n')) !== -1) {
      close = closeRe.test(pending.slice(0, end + 2));
      pending = pending.slice(end + 4);
      answered++;
    }
    if (answered === 1) sock.write(close ? CLOSE : KEEP);
    else if (answered > 1) sock.write(Buffer.concat([...Array<Buffer>(answered - 1).fill(KEEP), close ? CLOSE : KEEP]));
    if (close) sock.end();
    else if (pending.length > MAX_HEAD) sock.destroy();
  });
  sock.on('error', () => sock.destroy());
}

/** serveTcp is the source/sink: `SEND <n>\n` gets n bytes; `RECV <n>\n` reads n bytes, then says OK. */
function serveTcp(sock: Socket): void {
  let first = '';
  let decided = false;
  let sending = false;
  let receiving = -1;
  sock.on('data', (chunk: Buffer) => {
    if (receiving >= 0) {
      receiving -= chunk.length;
      if (receiving <= 0) {
        receiving = -1;
        sending = true;
        sock.end('OK\n');
      }
      return;
    }
    if (decided) return;
    first += chunk.toString('latin1');
    const nl = first.indexOf('\n');
    if (nl === -1) {
      decided = first.length > 64;
      return;
    }
    decided = true;
    const m = /^(SEND|RECV) (\d{1,12})$/.exec(first.slice(0, nl).trim());
    if (m?.[1] === 'SEND') {
      sending = true;
      writeBytes(sock, Number(m[2]), () => sock.end());
    } else if (m?.[1] === 'RECV') {
      receiving = Number(m[2]) - (Buffer.byteLength(first, 'latin1') - nl - 1);
      if (receiving <= 0) {
        receiving = -1;
        sending = true;
        sock.end('OK\n');
      }
    }
  });
  // A sender ends by itself once the bytes are out; otherwise the client's end is answered with ours.
  sock.on('end', () => {
    if (!sending) sock.end();
  });
  sock.on('error', () => sock.destroy());
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve((server.address() as AddressInfo).port));
  });
}

const http = net.createServer({ noDelay: true }, serveHttp);
const tcp = net.createServer({ allowHalfOpen: true, noDelay: true }, serveTcp);
const [httpPort, tcpPort] = await Promise.all([listen(http), listen(tcp)]);
process.stdout.write(JSON.stringify({ http: httpPort, tcp: tcpPort }) + '\n');
process.on('SIGTERM', () => process.exit(0));
