import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { openStore } from '../../src/sessions/open.js';
import type { StoreConfig } from '../../src/sessions/store.js';
import { startRedisSentinel } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const sentinel = await startRedisSentinel();
t.teardown(() => sentinel.stop());
const cfg: StoreConfig = {
  type: 'redis',
  sentinel: { name: sentinel.name, hosts: sentinel.sentinels },
  keyPrefix: `tg-test-${randomUUID().slice(0, 8)}:`,
  commandTimeoutMs: 2_000,
};

storeContract('redis sentinel', {
  open: () => openStore(cfg),
  advance: (ms) => sleep(ms),
});

t.test('the store finds the master through the Sentinel', async (t) => {
  const store = await openStore(cfg);
  t.teardown(() => store.close());
  t.equal(store.kind, 'redis-sentinel');
  await store.set('via-sentinel', 'v');
  t.equal(await store.get('via-sentinel'), 'v');
});
