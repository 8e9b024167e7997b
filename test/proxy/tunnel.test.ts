import t, { type Test } from 'tap';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { SelfGuard, type DialOptions } from '../../src/proxy/dial.js';
import { openTunnel, uploadsReadIntoTunnelBuffer, type TunnelResult } from '../../src/proxy/tunnel.js';

/** answerWithHash counts and hashes what comes until the client's FIN, then answers with both. */
function answerWithHash(s: Socket): void {
  const h = createHash('sha256');
  let n = 0;
  s.on('data', (c: Buffer) => {
    n += c.length;
    h.update(c);
  });
  s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
}

// A raw origin that answers every connection with the count and hash of what it got.
const sink = net.createServer({ allowHalfOpen: true }, answerWithHash);
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const sinkPort = (sink.address() as AddressInfo).port;
t.teardown(() => sink.close());

const opts: DialOptions & { connectTimeoutMs: number; idleTimeoutMs: number; established: boolean } = {
  hosts: () => new Map(),
  self: new SelfGuard(),
  connectTimeoutMs: 2000,
  idleTimeoutMs: 5000,
  established: false,
};

/** accepted gives a connected pair: the client end, and the server end as a proxy's listener gets it. */
async function accepted(t: Test): Promise<{ client: Socket; server: Socket }> {
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const server = new Promise<Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  return { client, server: await server };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

t.test('this Node lets a tunnel read uploads into its own buffer (else they are piped, at four times the CPU)', async (t) => {
  t.equal(uploadsReadIntoTunnelBuffer, true);
});

t.test('an upload reaches the origin whole: the head, bytes that waited in the stream, and the rest; then the half-close', async (t) => {
  const { client, server } = await accepted(t);
  // Bytes the server end has read into its stream buffer before the tunnel takes it over.
  const early = randomBytes(3000);
  client.write(early);
  server.resume();
  server.pause();
  await new Promise((r) => setTimeout(r, 50));
  t.ok(server.readableLength > 0, `${server.readableLength} bytes wait in the stream buffer`);
  const head = randomBytes(100);
  const rest = randomBytes(4 * 1024 * 1024 + 17);
  const result = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, head, '127.0.0.1', sinkPort, () => {}, resolve));
  const answer = new Promise<string>((resolve) => {
    let b = '';
    client.on('data', (c: Buffer) => (b += c.toString()));
    client.on('end', () => resolve(b));
  });
  client.end(rest);
  const all = Buffer.concat([head, early, rest]);
  t.equal(await answer, `${all.length} ${sha(all)}`, 'in order, nothing lost or doubled');
  client.destroy();
  const r = await result;
  t.equal(r.opened, true);
  t.equal(r.upBytes, early.length + rest.length, 'the client bytes counted, those that waited included (the head came with the CONNECT)');
});

t.test('a client that sent its bytes and its end before the tunnel opened still gets them through, and the answer', async (t) => {
  const { client, server } = await accepted(t);
  const early = randomBytes(5000);
  client.end(early);
  const answer = new Promise<string>((resolve) => {
    let b = '';
    client.on('data', (c: Buffer) => (b += c.toString()));
    client.on('end', () => resolve(b));
  });
  server.resume();
  server.pause();
  await new Promise((r) => setTimeout(r, 50));
  t.ok(server.readableLength > 0 && !server.readableEnded, 'bytes and the end wait in the stream, not yet handed out');
  const result = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, Buffer.alloc(0), '127.0.0.1', sinkPort, () => {}, resolve));
  t.equal(await answer, `${early.length} ${sha(early)}`);
  client.destroy();
  t.equal((await result).opened, true);
});

t.test('a client whose end was already handed out before the tunnel opened: the origin gets the end at once', async (t) => {
  const { client, server } = await accepted(t);
  client.end();
  await new Promise<void>((r) => {
    server.once('end', () => r());
    server.resume();
  });
  server.pause();
  t.ok(server.readableEnded);
  const answer = new Promise<string>((resolve) => {
    let b = '';
    client.on('data', (c: Buffer) => (b += c.toString()));
    client.on('end', () => resolve(b));
  });
  const result = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, Buffer.alloc(0), '127.0.0.1', sinkPort, () => {}, resolve));
  t.equal(await answer, `0 ${sha(Buffer.alloc(0))}`, 'the origin saw the end, and answered');
  client.destroy();
  await result;
});

t.test('a download the client has not read yet when both sides have ended still arrives whole, then a clean end', async (t) => {
  // The origin answers only after the client's end, then ends too. The tunnel's last step is closing
  // the client's side: with the kernel still holding bytes for it (1 MiB fits in the socket buffers,
  // so the tunnel is over before the client reads), or with bytes still in our own buffer (8 MiB
  // does not fit: its half is ended and drained instead). Neither may cost a byte.
  for (const [size, closesFirst] of [[1024 * 1024 + 5, true], [8 * 1024 * 1024 + 5, false]] as const) {
    const body = randomBytes(size);
    const source = net.createServer({ allowHalfOpen: true }, (s) => {
      s.resume();
      s.on('end', () => s.end(body));
    });
    await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
    t.teardown(() => source.close());
    const { client, server } = await accepted(t);
    const result = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, Buffer.alloc(0), '127.0.0.1', (source.address() as AddressInfo).port, () => {}, resolve));
    client.pause();
    client.end();
    const early = await Promise.race([result.then(() => true), new Promise((r) => setTimeout(() => r(false), 1000))]);
    t.equal(early, closesFirst, closesFirst ? `${size} bytes: the tunnel closed while they were still on their way` : `${size} bytes: the tunnel waits for the client to take them`);
    const chunks: Buffer[] = [];
    const ended = await new Promise<string>((resolve) => {
      client.on('data', (c: Buffer) => chunks.push(c));
      client.on('end', () => resolve('end'));
      client.on('error', (err) => resolve(`error ${err.message}`));
      client.resume();
    });
    t.equal(ended, 'end', 'a FIN, not a reset');
    const got = Buffer.concat(chunks);
    t.equal(got.length, body.length);
    t.equal(sha(got), sha(body), 'every byte, in order');
    const r = await result;
    t.equal(r.opened, true);
    t.equal(r.downBytes, body.length, 'all of it counted as sent');
  }
});

t.test('an upload to an origin that is slow to read arrives whole: the read buffer is not reused while a write still holds it', async (t) => {
  // The origin reads nothing for a while, so the kernel's buffers fill and writes upstream stay pending.
  const slow = net.createServer({ allowHalfOpen: true }, (s) => {
    s.pause();
    setTimeout(() => {
      answerWithHash(s);
      s.resume();
    }, 300);
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  t.teardown(() => slow.close());
  const { client, server } = await accepted(t);
  const result = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, Buffer.alloc(0), '127.0.0.1', (slow.address() as AddressInfo).port, () => {}, resolve));
  const answer = new Promise<string>((resolve) => {
    let b = '';
    client.on('data', (c: Buffer) => (b += c.toString()));
    client.on('end', () => resolve(b));
  });
  const body = randomBytes(16 * 1024 * 1024 + 3);
  client.end(body);
  t.equal(await answer, `${body.length} ${sha(body)}`, 'every byte, in order');
  client.destroy();
  t.equal((await result).upBytes, body.length);
});

t.test('many tunnels one after another reuse buffers without mixing their bytes', async (t) => {
  for (let i = 0; i < 20; i++) {
    const { client, server } = await accepted(t);
    const data = randomBytes(200_000 + i * 1000);
    const done = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, Buffer.alloc(0), '127.0.0.1', sinkPort, () => {}, resolve));
    const answer = new Promise<string>((resolve) => {
      let b = '';
      client.on('data', (c: Buffer) => (b += c.toString()));
      client.on('end', () => resolve(b));
    });
    client.end(data);
    t.equal(await answer, `${data.length} ${sha(data)}`, `tunnel ${i}`);
    client.destroy();
    await done;
  }
});

t.test('a client that resets mid-upload ends the tunnel once, with no error thrown', async (t) => {
  const { client, server } = await accepted(t);
  const result = new Promise<TunnelResult>((resolve) => openTunnel(opts, opts, server, Buffer.alloc(0), '127.0.0.1', sinkPort, () => {}, resolve));
  client.write(randomBytes(1024 * 1024));
  await new Promise((r) => setTimeout(r, 20));
  client.resetAndDestroy();
  const r = await result;
  t.equal(r.opened, true);
  t.equal(r.connectError, null);
});
