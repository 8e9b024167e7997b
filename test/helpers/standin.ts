/**
 * standin: a bare relay that does only what the transparent listeners do to find a connection's
 * destination, for the lab tests of that groundwork (origdst, the SNI peek) apart from Tollgate; and
 * the origin of a lab's origin namespace.
 *
 *   client ns -> REDIRECT -> startRelay() on the host: [peek SNI] -> originalDestination() -> splice -> origin ns
 *
 * With `peekSni` the relay buffers the first bytes until peekClientHello() decides, without consuming
 * them (they are replayed to the origin), then reads the original destination and splices. It records both.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { peekClientHello, type ClientHelloPeek } from '../../src/proxy/clienthello.js';
import { originalDestination, type OriginalDestination } from '../../src/proxy/origdst.js';
import { waitForLine, type Lab } from './netns.js';

/** ORIGIN_SCRIPT is an origin for the origin namespace: HTTP on port 80 and, given a key and certificate, HTTPS on 443. */
const ORIGIN_SCRIPT = `
const http = require('node:http');
const https = require('node:https');
const handler = (req, res) => {
  res.end('origin ' + req.socket.localAddress + ':' + req.socket.localPort + ' host=' + req.headers.host + ' from=' + req.socket.remoteAddress + '\\n');
};
let waiting = 1;
const up = () => { if (--waiting === 0) console.log('listening'); };
http.createServer(handler).listen(80, '::', up);
if (process.env.ORIGIN_KEY) {
  waiting++;
  https.createServer({ key: process.env.ORIGIN_KEY, cert: process.env.ORIGIN_CERT }, handler).listen(443, '::', up);
}
`;

/** startOrigin runs the origin in the lab's origin namespace (HTTPS too when given a key and certificate). */
export async function startOrigin(lab: Lab, tls?: { key: string; cert: string }): Promise<void> {
  const env = tls ? { ...process.env, ORIGIN_KEY: tls.key, ORIGIN_CERT: tls.cert } : process.env;
  await waitForLine(lab.spawn('origin', [process.execPath, '-e', ORIGIN_SCRIPT], env), /listening/);
}

/** Relay is a stand-in transparent listener and what it found for each connection. */
export interface Relay {
  readonly port: number;
  readonly seen: (OriginalDestination | null)[];
  readonly sni: ClientHelloPeek[];
  close(): Promise<void>;
}

/** READ_LIMIT_BYTES is above the peek's bound, so the peek always decides before the relay gives up. */
const READ_LIMIT_BYTES = 64 * 1024;

/** startRelay listens on one port on every given address (the IPv4 and IPv6 REDIRECT rules name the same port). */
export async function startRelay(t: Test, opts: { peekSni?: boolean }, ...hosts: string[]): Promise<Relay> {
  const seen: (OriginalDestination | null)[] = [];
  const sni: ClientHelloPeek[] = [];
  const sockets = new Set<net.Socket>();
  const splice = (client: net.Socket, head: Buffer) => {
    const dest = originalDestination(client);
    seen.push(dest);
    if (dest === null) {
      client.end('HTTP/1.1 421 Misdirected Request\r\ncontent-length: 15\r\nconnection: close\r\n\r\nno origdst here');
      return;
    }
    const upstream = net.connect({ host: dest.address, port: dest.port });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    upstream.write(head);
    client.pipe(upstream).pipe(client);
    client.resume();
  };
  const onClient = (client: net.Socket) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (!opts.peekSni) return splice(client, Buffer.alloc(0));
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const peek = peekClientHello(head);
      if (peek.kind === 'more' && head.length < READ_LIMIT_BYTES) return;
      client.off('data', onData);
      client.pause();
      sni.push(peek);
      if (peek.kind !== 'sni') return void client.destroy();
      splice(client, head);
    };
    client.on('data', onData);
  };
  const servers: net.Server[] = [];
  let port = 0;
  for (const host of hosts) {
    const server = net.createServer(onClient);
    await new Promise<void>((r) => server.listen(port, host, r));
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  const relay: Relay = {
    port,
    seen,
    sni,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((r) => server.close(() => r()))));
    },
  };
  t.teardown(relay.close);
  return relay;
}
