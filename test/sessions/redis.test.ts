import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import t from 'tap';
import { openStore } from '../../src/sessions/open.js';
import { RedisStore } from '../../src/sessions/redis.js';
import { StoreUnavailableError, type StoreConfig } from '../../src/sessions/store.js';
import { freePort, startRedis, until } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

// REDIS_URL points the suite at an existing server; by default it spawns its own.
const server = process.env.REDIS_URL ? null : await startRedis();
t.teardown(() => server?.stop());
const url = process.env.REDIS_URL ?? server!.url;
const keyPrefix = `tg-test-${randomUUID().slice(0, 8)}:`;
const cfg: StoreConfig = { type: 'redis', url, keyPrefix, commandTimeoutMs: 2_000 };

storeContract('redis standalone', {
  open: () => openStore(cfg),
  advance: (ms) => sleep(ms),
});

t.test('every key and channel carries the keyPrefix', async (t) => {
  const store = await openStore(cfg);
  const raw = new Redis(url);
  const rawSub = new Redis(url);
  t.teardown(async () => {
    await store.close();
    raw.disconnect();
    rawSub.disconnect();
  });
  await store.set('plain', 'v');
  await store.sadd('members', 'm');
  t.equal(await raw.get(`${keyPrefix}plain`), 'v');
  t.equal(await raw.type(`${keyPrefix}members`), 'zset', 'sets are sorted sets');
  t.equal(await raw.get('plain'), null, 'nothing is written without the prefix');

  const heard: string[] = [];
  rawSub.on('message', (ch: string, m: string) => heard.push(`${ch} ${m}`));
  await rawSub.subscribe(`${keyPrefix}news`);
  await store.publish('news', 'hi');
  await until(() => heard.length > 0, 2_000, 'the prefixed message');
  t.same(heard, [`${keyPrefix}news hi`]);
});

t.test('a keyPrefix with a brace is refused, because it would break hash tags', async (t) => {
  t.throws(() => new RedisStore({ ...cfg, keyPrefix: 'a{b' } as typeof cfg & { type: 'redis' }));
});

t.test('atomic refuses a set op on a plain value and writes nothing', async (t) => {
  const store = await openStore(cfg);
  t.teardown(() => store.close());
  const p = `{${randomUUID().slice(0, 8)}}`;
  await store.set(`${p}plain`, 'x');
  const attempt = store.atomic([
    { op: 'set', key: `${p}first`, value: 'v' },
    { op: 'sadd', key: `${p}plain`, member: 'm' },
  ]);
  await t.rejects(attempt, /WRONGTYPE/);
  await attempt.catch((err: unknown) => t.notOk(err instanceof StoreUnavailableError, 'a bad op is not an outage'));
  t.equal(await store.get(`${p}first`), null, 'the earlier op was not applied');
  t.equal(await store.get(`${p}plain`), 'x');
});

t.test('openStore rejects with StoreUnavailableError when nothing listens, and reports it once', async (t) => {
  const port = await freePort();
  const errors: Error[] = [];
  const started = Date.now();
  await t.rejects(
    openStore(
      { type: 'redis', url: `redis://127.0.0.1:${port}`, keyPrefix, commandTimeoutMs: 500 },
      { onError: (err) => errors.push(err), connectTimeoutMs: 1_500 },
    ),
    StoreUnavailableError,
  );
  t.ok(Date.now() - started < 5_000, 'it gives up after the connect timeout');
  t.equal(errors.length, 1, 'reconnect failures during one outage are reported once');
});

t.test('a command against a stopped server fails fast with StoreUnavailableError', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const store = await openStore({ ...cfg, url: own.url } as StoreConfig, { onError: () => {} });
  t.teardown(() => store.close());
  await store.set('k', 'v');
  await own.stop();
  const started = Date.now();
  await t.rejects(store.get('k'), StoreUnavailableError);
  await t.rejects(store.ping(), StoreUnavailableError);
  t.ok(Date.now() - started < 5_000, 'no waiting for a reconnect');
});

t.test('a command against a frozen server times out with StoreUnavailableError', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const store = await openStore({ ...cfg, url: own.url, commandTimeoutMs: 300 } as StoreConfig, { onError: () => {} });
  t.teardown(() => store.close());
  await store.set('k', 'v');
  own.pause();
  const started = Date.now();
  await t.rejects(store.get('k'), StoreUnavailableError);
  t.ok(Date.now() - started < 3_000, `gave up after ${Date.now() - started} ms`);
  own.resume();
  await until(async () => (await store.get('k').catch(() => null)) === 'v', 10_000, 'answers after resume');
});
