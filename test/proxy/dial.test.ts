import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { dial, dialReading, SelfGuard, type DialOptions, type Resolve } from '../../src/proxy/dial.js';

const listener = net.createServer((s) => s.end('you reached our own listener\n'));
await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
const port = (listener.address() as AddressInfo).port;
t.teardown(() => new Promise<void>((r) => listener.close(() => r())));
const self = new SelfGuard();
self.add('127.0.0.1', port);

/** DIALS are the two ways in: plain, and a tunnel's (reads into the caller's buffer). Both must judge alike. */
const DIALS = ['dial', 'dialReading'] as const;
type Via = (typeof DIALS)[number];

function outcome(opts: DialOptions, host: string, via: Via = 'dial'): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const s =
      via === 'dial'
        ? dial(opts, host, port)
        : dialReading(opts, host, port, {
            buffer: Buffer.alloc(64),
            callback: (n, b) => {
              data += Buffer.from(b.subarray(0, n)).toString();
              return true;
            },
          });
    s.on('data', (c: Buffer) => (data += c.toString()));
    // The tunnel dial allows half-open: the listener's end is answered with ours, so the socket closes.
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.on('close', () => resolve(data === '' ? 'closed' : 'reached'));
  });
}

t.test('an IP literal of ours is refused in every spelling, by both dials', async (t) => {
  for (const via of DIALS) {
    for (const host of ['127.0.0.1', '2130706433', '0x7f.1', '127.1', '::ffff:7f00:1', '[::ffff:127.0.0.1]']) {
      t.equal(await outcome({ hosts: () => new Map(), self }, host, via), 'ELOOP_SELF', `${via} ${host}`);
    }
    t.equal(await outcome({ hosts: () => new Map(), self: new SelfGuard() }, '0x7f.1', via), 'reached', `${via}: the same spelling reaches the listener when the guard does not know it`);
  }
});

t.test('a name resolving to one of ours is refused by the tunnel dial too, and a static host likewise', async (t) => {
  const resolve: Resolve = (_h, cb) => cb(null, ['127.0.0.3', '127.0.0.1']);
  t.equal(await outcome({ hosts: () => new Map(), self, resolve }, 'multi.test', 'dialReading'), 'ELOOP_SELF', 'DNS answer');
  t.equal(await outcome({ hosts: () => new Map([['pinned.test', '127.0.0.1']]), self }, 'pinned.test', 'dialReading'), 'ELOOP_SELF', 'static host');
  t.equal(await outcome({ hosts: () => new Map(), self: new SelfGuard(), resolve: (_h, cb) => cb(null, ['127.0.0.1']) }, 'fine.test', 'dialReading'), 'reached', 'not ours: reached, its bytes read into the buffer');
});

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
