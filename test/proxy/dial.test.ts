import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { dial, SelfGuard, type DialOptions, type Resolve } from '../../src/proxy/dial.js';

const listener = net.createServer((s) => s.end('you reached our own listener\n'));
await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
const port = (listener.address() as AddressInfo).port;
t.teardown(() => new Promise<void>((r) => listener.close(() => r())));
const self = new SelfGuard();
self.add('127.0.0.1', port);

function outcome(opts: DialOptions, host: string): Promise<string> {
  return new Promise((resolve) => {
    const s = dial(opts, host, port);
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.on('close', () => resolve(data === '' ? 'closed' : 'reached'));
  });
}

t.test('a name is refused if any address it resolves to is ours, whatever the order', async (t) => {
  for (const answer of [['127.0.0.1'], ['127.0.0.3', '127.0.0.1'], ['127.0.0.1', '127.0.0.3'], ['::ffff:7f00:1'], ['0.0.0.0']]) {
    const resolve: Resolve = (_h, cb) => cb(null, answer);
    t.equal(await outcome({ hosts: () => new Map(), self, resolve }, 'multi.test'), 'ELOOP_SELF', answer.join(', '));
  }
});

t.test('a name whose answer changes between lookups (rebinding) is judged on the address it is dialled to', async (t) => {
  let calls = 0;
  // First answer: a loopback address we do not listen on; second: our own listener's.
  const resolve: Resolve = (_h, cb) => cb(null, [++calls === 1 ? '127.0.0.3' : '127.0.0.1']);
  const opts = { hosts: () => new Map<string, string>(), self, resolve };
  t.equal(await outcome(opts, 'rebind.test'), 'ECONNREFUSED', 'the first answer is dialled and nothing listens there');
  t.equal(await outcome(opts, 'rebind.test'), 'ELOOP_SELF', 'the second answer is ours and is refused before connecting');
});

t.test('an empty answer is a resolution failure, not a connection', async (t) => {
  const resolve: Resolve = (_h, cb) => cb(null, []);
  t.equal(await outcome({ hosts: () => new Map(), self, resolve }, 'empty.test'), 'ENOTFOUND');
});

t.test('a guard that does not know the port lets the dial through (the listener is reached)', async (t) => {
  t.equal(await outcome({ hosts: () => new Map(), self: new SelfGuard() }, '127.0.0.1'), 'reached', 'so the refusals above are the guard, not the network');
});
