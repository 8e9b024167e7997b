import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { openStore } from '../../src/sessions/open.js';
import type { Store, StoreConfig } from '../../src/sessions/store.js';
import { TieredStore } from '../../src/sessions/tiered.js';
import { startRedis, until } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const dir = await mkdtemp(join(tmpdir(), 'tollgate-tiered-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const server = process.env.REDIS_URL ? null : await startRedis();
t.teardown(() => server?.stop());
const redis: StoreConfig = {
  type: 'redis',
  url: process.env.REDIS_URL ?? server!.url,
  keyPrefix: `tg-test-${randomUUID().slice(0, 8)}:`,
  commandTimeoutMs: 2_000,
};

/** tiered wraps a backend and starts listening, as main does. */
async function tiered(backend: Store, opts: ConstructorParameters<typeof TieredStore>[1] = {}): Promise<TieredStore> {
  const store = new TieredStore(backend, opts);
  await store.start();
  return store;
}

// One fake clock drives both the embedded backend and the cache, so cached entries age with it.
let clock = Date.now();
const now = (): number => clock;
storeContract('tiered over embedded', {
  open: () => tiered(new EmbeddedStore({ path: dir, now }), { now, ttlMs: 500 }),
  advance: async (ms) => {
    clock += ms;
  },
});

storeContract('tiered over redis', {
  open: async () => tiered(await openStore(redis), { ttlMs: 500 }),
  advance: (ms) => sleep(ms),
});

t.test('peek answers from memory only: unknown, then the value get cached, then known absence', async (t) => {
  const store = await tiered(new EmbeddedStore({ path: dir }));
  t.teardown(() => store.close());
  const k = `peek-${randomUUID()}`;
  await store.backend.set(k, 'v');
  t.equal(store.peek(k), undefined, 'not cached yet');
  t.equal(await store.get(k), 'v');
  t.equal(store.peek(k), 'v');
  t.equal(await store.get(`${k}:missing`), null);
  t.equal(store.peek(`${k}:missing`), null, 'absence is cached too');
  t.same(store.stats(), { hits: 2, misses: 3 }, 'peek and get both count');
});

t.test('the cache forgets an entry after ttlMs', async (t) => {
  let at = 1_000_000;
  const store = await tiered(new EmbeddedStore({ path: dir }), { now: () => at, ttlMs: 5_000 });
  t.teardown(() => store.close());
  await store.set('aging', 'v');
  await store.get('aging');
  at += 4_000;
  t.equal(store.peek('aging'), 'v');
  at += 2_000;
  t.equal(store.peek('aging'), undefined);
});

t.test('max bounds the number of cached entries', async (t) => {
  const store = await tiered(new EmbeddedStore({ path: dir }), { max: 2 });
  t.teardown(() => store.close());
  for (const k of ['m1', 'm2', 'm3']) await store.get(k);
  t.equal(store.peek('m1'), undefined, 'the least recently used went first');
  t.equal(store.peek('m3'), null);
});

t.test('every write through the store drops the local entry', async (t) => {
  const store = await tiered(new EmbeddedStore({ path: dir }));
  t.teardown(() => store.close());
  const k = `w-${randomUUID()}`;
  const warm = async (): Promise<void> => {
    await store.get(k);
    t.not(store.peek(k), undefined);
  };
  await warm();
  await store.set(k, 'a');
  t.equal(store.peek(k), undefined, 'set');
  t.equal(await store.get(k), 'a', 'read your own write');
  await store.del(k);
  t.equal(store.peek(k), undefined, 'del');
  await warm();
  await store.createIfAbsent(k, 'b');
  t.equal(store.peek(k), undefined, 'createIfAbsent');
  await warm();
  t.equal(await store.consume(k), 'b');
  t.equal(store.peek(k), undefined, 'consume');
  await warm();
  await store.atomic([{ op: 'set', key: k, value: 'c' }]);
  t.equal(store.peek(k), undefined, 'atomic');
  await warm();
  // The key holds 'c', not a number, so incr fails; the local entry must go regardless.
  await t.rejects(store.incr(k, 0));
  t.equal(store.peek(k), undefined, 'incr');
});

t.test('a read that started before a write does not put the old value back', async (t) => {
  const backend = new EmbeddedStore({ path: dir });
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  // The backend read completes first, then is held until the write below has finished.
  const slowGet = new Proxy(backend, {
    get(target, prop, receiver) {
      if (prop !== 'get') return Reflect.get(target, prop, receiver);
      return async (key: string) => {
        const v = await target.get(key);
        await gate;
        return v;
      };
    },
  });
  const store = await tiered(slowGet);
  t.teardown(() => store.close());
  const k = `race-${randomUUID()}`;
  await backend.set(k, 'old');
  const read = store.get(k);
  await sleep(10);
  await store.set(k, 'new');
  release();
  t.equal(await read, 'old', 'the concurrent read saw what was there when it ran');
  t.equal(store.peek(k), undefined, 'but did not cache it');
  t.equal(await store.get(k), 'new');
});

t.test('a del through one node drops the entry from another node within 1 s (Redis)', async (t) => {
  const a = await tiered(await openStore(redis));
  const b = await tiered(await openStore(redis));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const k = `session-${randomUUID()}`;
  // The invalidation for a's own write travels on b's subscriber connection and may land after
  // b has already read the new value, dropping it once more; wait until b's entry is settled.
  const settled = async (value: string | null): Promise<void> => {
    await until(async () => (await b.get(k)) === value && b.peek(k) === value, 1_000, `b caching ${value}`);
    await sleep(100);
    t.equal(b.peek(k), value, `b holds ${value}`);
  };
  await a.set(k, 'alice');
  await settled('alice');
  await a.del(k);
  await until(() => b.peek(k) === undefined, 1_000, 'the invalidation on b');
  t.equal(await b.get(k), null);

  await settled(null);
  await a.set(k, 'bob');
  await until(() => b.peek(k) === undefined, 1_000, 'a set drops a cached absence too');
  t.equal(await b.get(k), 'bob');
});

t.test('invalidations also reach another instance on the same embedded file', async (t) => {
  const a = await tiered(new EmbeddedStore({ path: dir }));
  const b = await tiered(new EmbeddedStore({ path: dir }));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.set('shared', 'v1');
  await sleep(20); // let a's own invalidation pass before b caches v1
  t.equal(await b.get('shared'), 'v1');
  t.equal(b.peek('shared'), 'v1');
  await a.set('shared', 'v2');
  await until(() => b.peek('shared') === undefined, 1_000, 'the invalidation on b');
  t.equal(await b.get('shared'), 'v2');
});

t.test('kind names the backend behind the cache', async (t) => {
  const store = await tiered(new EmbeddedStore({ path: dir }));
  t.teardown(() => store.close());
  t.equal(store.kind, 'embedded+lru');
});
