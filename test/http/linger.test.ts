/**
 * lingerClose on a real HTTP server: the reply arrives, what follows is drained, and every bound ends it.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { bodyPending, isLingering, lingerClose, type LingerBounds } from '../../src/http/linger.js';

/** TapTest is the type of a subtest's `t`. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const REPLY = 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig\n';

/** Outcome is what the server saw of one lingering socket and what the client saw. */
interface Outcome {
  readonly reply: string;
  readonly clientError: string | undefined;
  /** drained is how many bytes the server read after it answered (socket.bytesRead at close). */
  readonly serverRead: number;
  readonly lingeredMs: number;
}

/**
 * lingerCase starts a server whose every request is answered by lingerClose with `bounds`, then sends a
 * request head and `plan` (writes of so many bytes, with pauses of so many ms as negative numbers);
 * with `end` the client half-closes after the plan, otherwise it stays silent.
 */
async function lingerCase(t: TapTest, bounds: LingerBounds, plan: readonly number[], end: boolean): Promise<Outcome> {
  const server = http.createServer();
  let began = 0;
  let serverRead = -1;
  const closed = new Promise<number>((resolve) => {
    server.once('request', (req: http.IncomingMessage) => {
      began = performance.now();
      req.socket.once('close', () => {
        serverRead = req.socket.bytesRead;
        resolve(performance.now() - began);
      });
      t.ok(bodyPending(req), 'the request still has body bytes coming');
      lingerClose(req.socket, REPLY, bounds);
      t.ok(isLingering(req.socket));
      lingerClose(req.socket, 'HTTP/1.1 500 Twice\r\n\r\n', bounds); // a second early error writes nothing
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let reply = '';
  let clientError: string | undefined;
  client.on('data', (c: Buffer) => (reply += c.toString('latin1')));
  client.on('error', (e: NodeJS.ErrnoException) => (clientError ??= e.code));
  const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
  client.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${1 << 30}\r\n\r\n`);
  for (const step of plan) {
    if (client.destroyed) break;
    if (step < 0) await new Promise((r) => setTimeout(r, -step));
    else await new Promise<void>((r) => client.write(Buffer.alloc(step, 'x'), () => r()));
  }
  if (end && !client.destroyed) client.end();
  const lingeredMs = await closed;
  client.destroy();
  await clientClosed;
  return { reply, clientError, serverRead, lingeredMs };
}

const roomy: LingerBounds = { maxBytes: 8 << 20, idleMs: 5_000, totalMs: 10_000 };

t.test('the client reads the reply and the rest of its body is drained until it closes its side', async (t) => {
  const o = await lingerCase(t, roomy, [1 << 20, 1 << 20], true);
  t.equal(o.reply, REPLY, 'exactly one reply, whole');
  t.equal(o.clientError, undefined, 'no reset, no EPIPE');
  t.ok(o.serverRead >= 2 << 20, 'the server read what the client sent after the reply');
  t.ok(o.lingeredMs < roomy.idleMs, 'and closed when the client ended, not at a bound');
});

t.test('reading stops at the byte bound', async (t) => {
  const bounds: LingerBounds = { ...roomy, maxBytes: 256 * 1024 };
  const o = await lingerCase(t, bounds, Array(64).fill(64 * 1024), false);
  t.match(o.reply, /^HTTP\/1\.1 413 /, 'the reply went out first');
  t.ok(o.serverRead <= bounds.maxBytes + 2 * 64 * 1024 + 1024, `read ${o.serverRead} bytes, about the bound and no more`);
  t.ok(o.lingeredMs < roomy.idleMs, 'closed at the byte bound, not at a timeout');
});

t.test('a client that stops sending is closed after the idle bound', async (t) => {
  const bounds: LingerBounds = { ...roomy, idleMs: 300 };
  const o = await lingerCase(t, bounds, [1024], false);
  t.equal(o.reply, REPLY);
  t.ok(o.lingeredMs >= 250 && o.lingeredMs < roomy.totalMs, `closed after ${Math.round(o.lingeredMs)} ms of silence`);
});

t.test('a client that trickles forever is closed at the total bound', async (t) => {
  const bounds: LingerBounds = { ...roomy, idleMs: 400, totalMs: 800 };
  const o = await lingerCase(t, bounds, Array(40).fill(0).flatMap(() => [16, -100]), false);
  t.equal(o.reply, REPLY);
  t.ok(o.lingeredMs >= 750 && o.lingeredMs < 2_000, `closed after ${Math.round(o.lingeredMs)} ms although it kept sending`);
});
