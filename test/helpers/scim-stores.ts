/**
 * scim-stores: the stores SCIM tests run on. Kept apart from scim.ts, which child processes load
 * too: this module registers a teardown on tap's root test.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import tap, { type Test } from 'tap';
import { openStore } from '../../src/sessions/open.js';
import type { Store } from '../../src/sessions/store.js';
import { startRedis, type RedisServer } from './redis.js';

/** SCIM_BACKENDS are the stores a SCIM test runs on: the harness's own embedded store, and Redis. */
export const SCIM_BACKENDS = ['embedded', 'redis'] as const;

/** redisServer is started on first use by a test file and stopped when the file ends. */
let redisServer: Promise<RedisServer> | null = null;

/**
 * redisStore opens a RedisStore on REDIS_URL, or on a redis-server this test file starts once, with
 * its own key prefix (pass one to share it between "nodes"), closed when t ends. On REDIS_URL the
 * prefix's keys are removed then too.
 */
export async function redisStore(t: Test, keyPrefix = `tg-scim-${randomUUID().slice(0, 8)}:`): Promise<Store> {
  let url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    if (redisServer === null) {
      const started = (redisServer = startRedis());
      // A server that never started has nothing to stop; its error already failed the test.
      tap.teardown(() => started.then((s) => s.stop(), () => {}));
    }
    url = (await redisServer).url;
  } else {
    // A shared server keeps what tests leave: remove this prefix's keys when t ends.
    const shared = url;
    t.teardown(() => removePrefix(shared, keyPrefix));
  }
  const store = await openStore({ type: 'redis', url, keyPrefix, commandTimeoutMs: 5_000 });
  t.teardown(() => store.close());
  return store;
}

/** backendStore is startScim's store option for a backend: none (embedded, the harness's own) or Redis. */
export async function backendStore(t: Test, backend: (typeof SCIM_BACKENDS)[number]): Promise<{ store?: Store }> {
  return backend === 'redis' ? { store: await redisStore(t) } : {};
}

/** removePrefix deletes every key under prefix (SCAN, not KEYS, so a shared server is not blocked). */
async function removePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000, commandTimeout: 5_000 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
