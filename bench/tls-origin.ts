/**
 * tls-origin: the https origin of the inspection bench (bench/inspect.ts), pinned next to the load.
 *
 *   client -> Tollgate (inspecting: TLS to the client, TLS to here) -> tls-origin
 *   client -> Tollgate (plain tunnel) -> tls-origin, TLS end to end with the client
 *
 * It makes a CA of its own in --dir (writes `origin-ca.pem`, which Tollgate trusts as `upstreamCa`
 * and the plain-tunnel client trusts directly) and serves every name asked for in the SNI with a
 * leaf from that CA. HTTP/1.1 on raw TLS sockets, like origin.ts on raw `net`, so its cost per
 * request stays a few µs:
 *
 *   GET /small      200, SMALL_BYTES (1 KiB) of body, keep-alive
 *   GET /bulk/N     200, N bytes of body
 *   POST /sink      reads the Content-Length body, then 200 "OK\n"
 *
 * Requests are answered in order; a client sends the next one after the answer (no pipelining
 * during a bulk body, which the bench never does).
 *
 *   node --import tsx bench/tls-origin.ts --dir DIR
 *   (prints {"type":"ready","port":…,"pid":…,"caFile":…})
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { checkCa, createCa } from '../src/tls/ca.js';
import { LeafMinter } from '../src/tls/leaf.js';
import { writeBytes } from './bytes.js';
import { SMALL_BYTES } from './inspect-client.js';

const ORIGIN_CA_NAME = 'Tollgate bench origin CA';

const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const head = (status: string, length: number) => Buffer.from(`HTTP/1.1 ${status}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`, 'latin1');
const SMALL = Buffer.concat([head('200 OK', SMALL_BYTES), Buffer.alloc(SMALL_BYTES, 0x62)]);
const OK = Buffer.concat([head('200 OK', 3), Buffer.from('OK\n')]);
const NOT_FOUND = head('404 Not Found', 0);
const requestLine = /^(GET|POST) (\/\S*) HTTP\/1\.1$/;
const contentLength = /\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*(?:\r\n|$)/i;

/** serve answers the requests of one TLS connection, in order. */
function serve(sock: TLSSocket): void {
  let pending: Buffer | null = null;
  let bodyLeft = 0;
  sock.setNoDelay(true);
  const answer = (text: string): void => {
    const m = requestLine.exec(text.slice(0, text.indexOf('\r\n')));
    const bulk = m?.[1] === 'GET' ? /^\/bulk\/(\d{1,12})$/.exec(m[2]!) : null;
    if (m?.[1] === 'GET' && m[2] === '/small') sock.write(SMALL);
    else if (bulk !== null) {
      const n = Number(bulk[1]);
      sock.write(head('200 OK', n));
      writeBytes(sock, n, () => {});
    } else if (m?.[1] === 'POST' && m[2] === '/sink') {
      bodyLeft = Number(contentLength.exec(text)?.[1] ?? 0);
      if (bodyLeft === 0) sock.write(OK);
    } else sock.write(NOT_FOUND);
  };
  sock.on('data', (chunk: Buffer) => {
    while (chunk.length > 0) {
      if (bodyLeft > 0) {
        const k = Math.min(bodyLeft, chunk.length);
        bodyLeft -= k;
        chunk = chunk.subarray(k);
        if (bodyLeft === 0) sock.write(OK);
        continue;
      }
      const buf: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        pending = buf;
        if (buf.length > MAX_HEAD) sock.destroy();
        return;
      }
      pending = null;
      chunk = buf.subarray(end + HEAD_END.length);
      answer(buf.toString('latin1', 0, end + 2));
    }
  });
  sock.on('error', () => sock.destroy());
}

const { values } = parseArgs({ options: { dir: { type: 'string' } } });
if (values.dir === undefined) throw new Error('--dir is required');
const made = createCa({ keyType: 'p256', commonName: ORIGIN_CA_NAME });
const caFile = join(values.dir, 'origin-ca.pem');
writeFileSync(caFile, made.certPem);
const minter = new LeafMinter({ ca: checkCa(made.certPem, made.keyPem, new Date(), ORIGIN_CA_NAME), keyType: 'ecdsa-p256' });
const server = createServer({ SNICallback: minter.sniCallback, ALPNProtocols: ['http/1.1'] }, serve);
server.on('tlsClientError', (err) => process.stderr.write(`tls-origin: ${err.message}\n`));
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(JSON.stringify({ type: 'ready', port: (server.address() as AddressInfo).port, pid: process.pid, caFile }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
