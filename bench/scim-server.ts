/**
 * scim-server: the SCIM server under test for bench/scim.ts, run as its own process so it can be
 * pinned to one core (`taskset -c 0 node --import tsx bench/scim-server.ts ...`).
 *
 *   node --import tsx bench/scim-server.ts --dir <tmp> --users 100000 [--redis redis://127.0.0.1:port]
 *     [--cpuProfile <file.cpuprofile>]
 *
 * It builds the same stack as test/helpers/scim.ts (Directory, ScimTokens, ScimRateLimiter with
 * limit 0, createScimHandler) over an EmbeddedStore in --dir or a RedisStore, fills the directory
 * through the Directory API (not HTTP) to --users users named `user<i>@bench.example`, and then
 * listens on 127.0.0.1:0. It speaks to the parent in JSON lines on stdout:
 *   {"type":"progress","users":10000,"rate":5123}   every 10,000 users of the fill
 *   {"type":"ready","port":…,"token":"…","pid":…,"fillMs":…}
 *   {"type":"stats",…}   in answer to a `stats` line on stdin (bench/service-time.ts)
 * The per-request log line goes through pino at level info to /dev/null, so its cost is counted
 * as in production. SIGTERM (or the parent's stdin closing) closes the server and the store.
 * --cpuProfile records a V8 CPU profile of the serving phase only (from ready to shutdown, not the fill),
 * for Chrome DevTools or `bench/profile.ts`. --heapProfile records a sampling allocation profile of the
 * serving phase (every allocation, garbage included: what drives the young-generation collections).
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Directory } from '../src/directory/directory.js';
import { ScimRateLimiter } from '../src/scim/ratelimit.js';
import { createScimHandler } from '../src/scim/server.js';
import { ScimTokens } from '../src/scim/tokens.js';
import { EmbeddedStore } from '../src/sessions/embedded.js';
import { RedisStore } from '../src/sessions/redis.js';
import type { Store } from '../src/sessions/store.js';
import { BENCH_TENANT, benchUser, benchUserName } from './scim-data.js';
import { answerStats, timed } from './service-time.js';

function emit(msg: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      users: { type: 'string', default: '100000' },
      redis: { type: 'string' },
      fillConcurrency: { type: 'string', default: '32' },
      cpuProfile: { type: 'string' },
      heapProfile: { type: 'string' },
    },
  });
  const users = Number(values.users);
  if (!Number.isInteger(users) || users < 0 || users > 1_000_000) throw new Error(`bad --users ${values.users}`);
  const store: Store =
    values.redis !== undefined
      ? new RedisStore({ type: 'redis', url: values.redis, keyPrefix: 'tollgate:', commandTimeoutMs: 5_000 })
      : new EmbeddedStore({ path: values.dir ?? (() => { throw new Error('--dir is required for the embedded store'); })() });

  if (store instanceof RedisStore) await store.ready(5_000);
  const directory = new Directory({ store, onUserRevoked: () => {}, onUsersChanged: () => {} });
  const tokens = new ScimTokens(store);
  const limiter = new ScimRateLimiter(store, { limit: 0 });
  const log = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));
  const handler = createScimHandler({
    directory,
    tokens,
    limiter,
    log,
    tenants: (org, idp) => `${org}/${idp}` === BENCH_TENANT,
  });
  const token = await tokens.generate(BENCH_TENANT);

  // Fill speed-up, embedded only: the fill runs with SQLite's synchronous=OFF (same rows, same Directory
  // code path; the store's group commit still fsyncs the WAL), then the store's own setting is restored
  // and the WAL checkpointed before the server listens, so every measured request runs exactly as in
  // production. The handle is private to EmbeddedStore; reached here only.
  const db = store instanceof EmbeddedStore ? (store as unknown as { db: { pragma(s: string, o?: { simple: boolean }): unknown } }).db : undefined;
  const productionSync = db?.pragma('synchronous', { simple: true });
  db?.pragma('synchronous = OFF');

  // Fill: a bounded pool of workers over a shared counter.
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let lastMark = t0;
  const conc = Math.max(1, Math.min(256, Number(values.fillConcurrency)));
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (;;) {
        const i = next++;
        if (i >= users) return;
        await directory.createUser(BENCH_TENANT, benchUser(benchUserName(i), i));
        done++;
        if (done % 10_000 === 0) {
          const now = performance.now();
          emit({ type: 'progress', users: done, rate: Math.round(10_000 / ((now - lastMark) / 1000)), elapsedMs: Math.round(now - t0) });
          lastMark = now;
        }
      }
    }),
  );
  const fillMs = performance.now() - t0;
  db?.pragma('wal_checkpoint(TRUNCATE)');
  db?.pragma(`synchronous = ${String(productionSync)}`);
  const sync = db?.pragma('synchronous', { simple: true });
  if (db !== undefined && sync !== productionSync) throw new Error(`synchronous not restored to ${String(productionSync)}: ${String(sync)}`);
  const count = await directory.count(BENCH_TENANT, 'User');
  if (count !== users) throw new Error(`fill: expected ${users} users, directory has ${count}`);

  const server = createServer({ keepAliveTimeout: 30_000 }, timed(handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  let profiler: Session | undefined;
  if (values.cpuProfile !== undefined) {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  let heapProfiler: Session | undefined;
  if (values.heapProfile !== undefined) {
    heapProfiler = new Session();
    heapProfiler.connect();
    // One sample per 16 KiB allocated on average, objects freed by GC included: where the garbage comes from.
    await heapProfiler.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  let closing = false;
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    if (profiler !== undefined && values.cpuProfile !== undefined) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(values.cpuProfile, JSON.stringify(profile));
      profiler.disconnect();
    }
    if (heapProfiler !== undefined && values.heapProfile !== undefined) {
      const { profile } = await heapProfiler.post('HeapProfiler.stopSampling');
      writeFileSync(values.heapProfile, JSON.stringify(profile));
      heapProfiler.disconnect();
    }
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  // The parent asks for service times on stdin; its dying closes our stdin: do not outlive it.
  answerStats(() => void shutdown());

  emit({ type: 'ready', port, token, pid: process.pid, fillMs: Math.round(fillMs), users: count });
}

main().catch((err: unknown) => {
  emit({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
