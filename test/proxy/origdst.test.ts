import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { endianness } from 'node:os';
import { originalDestination, originalDestinationSupport, parseSockaddr } from '../../src/proxy/origdst.js';

/** sockaddr builds the bytes the kernel writes: family in host order, port and address in network order. */
function sockaddr(family: number, port: number, addr: number[], size: number): Buffer {
  const b = Buffer.alloc(28);
  if (endianness() === 'LE') b.writeUInt16LE(family, 0);
  else b.writeUInt16BE(family, 0);
  b.writeUInt16BE(port, 2);
  b.set(addr, family === 2 ? 4 : 8);
  return b.subarray(0, size);
}

t.test('parseSockaddr reads sockaddr_in and sockaddr_in6', async (t) => {
  const v6 = (text: string) => {
    const out: number[] = [];
    for (const g of text.split(':')) out.push(parseInt(g, 16) >> 8, parseInt(g, 16) & 255);
    return out;
  };
  const cases: [string, Buffer, number, unknown][] = [
    ['IPv4', sockaddr(2, 80, [10, 213, 0, 6], 16), 16, { address: '10.213.0.6', port: 80, family: 4 }],
    ['IPv4, high port', sockaddr(2, 65535, [192, 0, 2, 1], 16), 16, { address: '192.0.2.1', port: 65535, family: 4 }],
    ['IPv6, zero run compressed', sockaddr(10, 443, v6('fd54:6f6c:6c67:0:0:0:0:2'), 28), 28, { address: 'fd54:6f6c:6c67::2', port: 443, family: 6 }],
    ['IPv6, no zero run', sockaddr(10, 8080, v6('2001:db8:1:2:3:4:5:6'), 28), 28, { address: '2001:db8:1:2:3:4:5:6', port: 8080, family: 6 }],
    ['IPv6 loopback', sockaddr(10, 1, v6('0:0:0:0:0:0:0:1'), 28), 28, { address: '::1', port: 1, family: 6 }],
    ['IPv4, short answer', sockaddr(2, 80, [10, 0, 0, 1], 16), 6, null],
    ['IPv6, short answer', sockaddr(10, 80, v6('2001:db8:0:0:0:0:0:1'), 28), 20, null],
    ['unknown family', sockaddr(1, 80, [1, 2, 3, 4], 16), 16, null],
    ['nothing', Buffer.alloc(28), 0, null],
  ];
  for (const [name, buf, len, want] of cases) t.same(parseSockaddr(Buffer.concat([buf, Buffer.alloc(28 - buf.length)]), len), want, name);
});

t.test('a socket that was not redirected has no original destination', async (t) => {
  t.equal(originalDestinationSupport().available, process.platform === 'linux', originalDestinationSupport().reason);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  const s = await accepted;
  t.equal(originalDestination(s), null, 'accepted socket, no NAT');
  t.equal(originalDestination(client), null, 'connecting side, no NAT');
  s.destroy();
  await new Promise((r) => s.once('close', r));
  t.equal(originalDestination(s), null, 'a closed socket (no fd)');
});
