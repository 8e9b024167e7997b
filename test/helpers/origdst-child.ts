/**
 * origdst-child: a dual-stack listener (on `::`) that answers each connection with what
 * originalDestination() found, for a test that runs it inside a lab namespace with a REDIRECT there.
 *
 *   ip netns exec NS node --import tsx test/helpers/origdst-child.ts
 *
 * Prints `port N` once listening.
 */
import net, { type AddressInfo } from 'node:net';
import { originalDestination } from '../../src/proxy/origdst.js';

const server = net.createServer((s) => {
  s.on('error', () => s.destroy());
  const body = JSON.stringify({ local: s.localAddress, dest: originalDestination(s) });
  s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
});
server.listen(0, '::', () => process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`));
