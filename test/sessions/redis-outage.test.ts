import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { openStore } from '../../src/sessions/open.js';
import { StoreUnavailableError, type StoreConfig } from '../../src/sessions/store.js';
import { TieredStore } from '../../src/sessions/tiered.js';
import { startRedis, until } from '../helpers/redis.js';

t.test('a TieredStore over Redis rides out a Redis restart', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const cfg: StoreConfig = {
    type: 'redis',
    url: server.url,
    keyPrefix: `tg-test-${randomUUID().slice(0, 8)}:`,
    commandTimeoutMs: 1_000,
  };
  const errors: Error[] = [];
  const onError = (err: Error): void => void errors.push(err);
  // The cache clock is fake so the test can age entries past their TTL without sleeping.
  let clock = 1_000_000;
  const open = async (): Promise<TieredStore> => {
    const store = new TieredStore(await openStore(cfg, { onError }), {
      now: () => clock,
      ttlMs: 5_000,
      maxStaleMs: 60_000,
      onError,
    });
    await store.start();
    return store;
  };
  const store = await open();
  const peer = await open();
  t.teardown(async () => {
    await store.close();
    await peer.close();
  });

  await store.set('warm', 'v');
  t.equal(await store.get('warm'), 'v');
  t.equal(await store.get('known-absent'), null);

  await server.stop();

  t.equal(store.peek('warm'), 'v', 'peek still answers from memory');
  t.equal(store.peek('known-absent'), null);
  t.equal(await store.get('warm'), 'v', 'a cached get needs no network');

  const cold = store.get('cold').then(
    () => 'resolved',
    (err: unknown) => err,
  );
  const outcome = await Promise.race([cold, sleep(5_000).then(() => 'hung')]);
  t.type(outcome, StoreUnavailableError, 'an uncached get fails fast instead of hanging');
  await t.rejects(store.set('x', 'y'), StoreUnavailableError, 'writes fail fast too');

  clock += 6_000;
  t.equal(store.peek('warm'), undefined, 'past its TTL peek no longer trusts the entry');
  t.equal(await store.get('warm'), 'v', 'but get serves it stale while the backend is down');
  clock += 60_000;
  await t.rejects(store.get('warm'), StoreUnavailableError, 'not beyond maxStaleMs');

  // Stay down long enough for several reconnect attempts (backoff 100 ms, 200 ms, ...).
  await sleep(1_500);
  await server.start();
  await until(
    async () => {
      try {
        await store.set('after', 'ok');
        return (await store.get('after')) === 'ok';
      } catch {
        return false;
      }
    },
    10_000,
    'the store to work again by itself',
  );
  t.pass('the store reconnected by itself');

  // The subscriber connection came back too, with its subscription: invalidations flow again.
  await until(
    async () => {
      // The peer has connections of its own, which may still be reconnecting: a refusal means not yet.
      try {
        const k = `probe-${randomUUID()}`;
        await peer.get(k);
        await store.set(k, 'new');
        await sleep(50);
        return peer.peek(k) === undefined;
      } catch {
        return false;
      }
    },
    10_000,
    'invalidations to reach the peer again',
  );
  t.pass('invalidations reach the peer again');
  t.ok(errors.length >= 1, `the outage was reported (${errors.length} reports)`);
  // Two stores with two connections each: at most one report per connection per outage.
  t.ok(errors.length <= 4, 'but not once per reconnect attempt');
});
