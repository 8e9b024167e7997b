import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { openStore } from '../../src/sessions/open.js';
import { StoreUnavailableError, type StoreConfig } from '../../src/sessions/store.js';
import { startRedisCluster } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const cluster = await startRedisCluster();
t.teardown(() => cluster.stop());
const cfg: StoreConfig = {
  type: 'redis',
  cluster: cluster.seeds,
  keyPrefix: `tg-test-${randomUUID().slice(0, 8)}:`,
  commandTimeoutMs: 2_000,
};

storeContract('redis cluster', {
  open: () => openStore(cfg),
  advance: (ms) => sleep(ms),
});

t.test('kind names the cluster backend', async (t) => {
  const store = await openStore(cfg);
  t.teardown(() => store.close());
  t.equal(store.kind, 'redis-cluster');
});

t.test('atomic keys without a shared hash tag are refused by Cluster, not reported as an outage', async (t) => {
  const store = await openStore(cfg);
  t.teardown(() => store.close());
  // Find two keys on different slots: with three masters, a handful of names is enough.
  const attempt = store.atomic(
    Array.from({ length: 16 }, (_, i) => ({ op: 'set' as const, key: `untagged-${i}`, value: 'v' })),
  );
  await t.rejects(attempt, /CROSSSLOT/);
  await attempt.catch((err: unknown) => t.notOk(err instanceof StoreUnavailableError));
  t.equal(await store.get('untagged-0'), null);
});

t.test('del spans slots', async (t) => {
  const store = await openStore(cfg);
  t.teardown(() => store.close());
  const keys = Array.from({ length: 16 }, (_, i) => `spread-${randomUUID()}-${i}`);
  for (const k of keys) await store.set(k, 'v');
  t.equal(await store.del(...keys), keys.length);
});
