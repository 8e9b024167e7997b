import t from 'tap';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../helpers/origin.js';
import { startRedis } from '../helpers/redis.js';
import { LogSink, testConfig, viaProxy } from '../helpers/tollgate.js';
import { startTollgate } from '../../src/main.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      })
      .on('error', reject);
  });
}

t.test('a restart of the embedded store keeps its data', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const opts = () => ({ config: testConfig(dir), accessLog: new LogSink(), appLog: new LogSink() });
  const a = await startTollgate(opts());
  await a.store.set('session:abc', JSON.stringify({ user: 'alice@example.test' }));
  await a.store.sadd('{u:alice}:sessions', 'abc');
  t.ok(await a.store.createIfAbsent('once', 'x'));
  await a.shutdown();

  const b = await startTollgate(opts());
  t.teardown(() => b.shutdown());
  t.same(JSON.parse((await b.store.get('session:abc'))!), { user: 'alice@example.test' });
  t.same(await b.store.smembers('{u:alice}:sessions'), ['abc']);
  t.notOk(await b.store.createIfAbsent('once', 'y'), 'create-if-absent still sees the earlier key');
  t.equal((await get(b.controlAddress.port, '/readyz')).status, 200);
});

t.test('with Redis: readyz follows the store; proxying goes on while Redis is down', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tg = await startTollgate({
    config: { ...testConfig(dir), store: { type: 'redis', url: redis.url, keyPrefix: `tg-it-${process.pid}:`, commandTimeoutMs: 500 } },
    accessLog: new LogSink(),
    appLog: new LogSink(),
  });
  t.teardown(() => tg.shutdown());

  const ready = await get(tg.controlAddress.port, '/readyz');
  t.equal(ready.status, 200);
  t.match(ready.body, 'store redis');
  await tg.store.set('k', 'v');
  t.equal(await tg.store.get('k'), 'v');
  t.equal(tg.store.peek('k'), 'v', 'the LRU has it');

  await redis.stop();
  const started = Date.now();
  const down = await get(tg.controlAddress.port, '/readyz');
  t.equal(down.status, 503);
  t.match(down.body, 'store_unavailable');
  t.ok(Date.now() - started < 5000, 'readyz answers without hanging');
  t.equal(tg.store.peek('k'), 'v', 'the hot path still answers from memory');
  t.equal((await viaProxy(tg.proxyAddress.port, `${origin.url}/hello`)).status, 200, 'proxying does not depend on Redis');
  t.equal((await get(tg.controlAddress.port, '/healthz')).status, 200, 'healthz is about the process only');

  await redis.start();
  const end = Date.now() + 15_000;
  let status = 0;
  while (Date.now() < end && status !== 200) {
    status = (await get(tg.controlAddress.port, '/readyz')).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(status, 200, 'reconnected by itself');
});
