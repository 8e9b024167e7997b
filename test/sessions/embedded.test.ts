import { spawn } from 'node:child_process';
import { existsSync, fdatasync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { EmbeddedStore, type SyncFile } from '../../src/sessions/embedded.js';
import { openStore } from '../../src/sessions/open.js';
import { StoreUnavailableError } from '../../src/sessions/store.js';
import { until } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-embedded-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// A fake clock shared by every instance on the file, so TTLs are tested without sleeping.
const contractDir = await tempDir();
let clock = Date.now();
storeContract('embedded', {
  open: async () => new EmbeddedStore({ path: contractDir, now: () => clock }),
  advance: async (ms) => {
    clock += ms;
  },
});

t.test('openStore opens <path>/tollgate.db in WAL mode, creating the directory', async (t) => {
  const dir = join(await tempDir(), 'nested', 'state');
  const store = await openStore({ type: 'embedded', path: dir });
  t.teardown(() => store.close());
  t.equal(store.kind, 'embedded');
  await store.set('k', 'v');
  t.ok(existsSync(join(dir, 'tollgate.db')));
  const db = new Database(join(dir, 'tollgate.db'), { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
});

t.test('expired rows are purged from disk by the background timer', async (t) => {
  const dir = await tempDir();
  let now = Date.now();
  const store = new EmbeddedStore({ path: dir, now: () => now, purgeIntervalMs: 20 });
  t.teardown(() => store.close());
  await store.set('short', 'v', 1_000);
  await store.set('long', 'v');
  now += 2_000;
  const db = new Database(join(dir, 'tollgate.db'), { readonly: true });
  t.teardown(() => db.close());
  const rows = db.prepare<[], { key: string }>('SELECT key FROM kv ORDER BY key');
  await until(() => rows.all().length === 1, 2_000, 'the purge');
  t.same(rows.all(), [{ key: 'long' }]);
});

t.test('a read waits until the write it sees is on disk, also from a second instance on the file', async (t) => {
  const dir = await tempDir();
  const a = new EmbeddedStore({ path: dir });
  const b = new EmbeddedStore({ path: dir });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const order: string[] = [];
  // The write is committed at once but acknowledged after its fsync; the read sees the row at once,
  // so it must not answer before the write is acknowledged.
  const write = a.set('k', 'v').then(() => order.push('write acknowledged'));
  const read = b.get('k').then((v) => order.push(`read ${v}`));
  const refused = b.createIfAbsent('k', 'w').then((won) => order.push(`createIfAbsent ${won}`));
  await Promise.all([write, read, refused]);
  t.same(order, ['write acknowledged', 'read v', 'createIfAbsent false']);
  t.equal(await b.get('other'), null, 'a key nobody is writing answers without waiting');
});

t.test('concurrent writes share fsyncs and each is acknowledged once it is on disk', async (t) => {
  const dir = await tempDir();
  const store = new EmbeddedStore({ path: dir });
  const writes = Array.from({ length: 64 }, (_, i) =>
    i % 2 ? store.set(`k${i}`, `v${i}`) : store.atomic([{ op: 'set', key: `k${i}`, value: `v${i}` }, { op: 'sadd', key: 'all', member: `k${i}` }]),
  );
  // close waits for the writes still waiting for their fsync instead of dropping them.
  const closed = store.close();
  await Promise.all(writes);
  await closed;
  const again = new EmbeddedStore({ path: dir });
  t.teardown(() => again.close());
  for (let i = 0; i < 64; i++) t.equal(await again.get(`k${i}`), `v${i}`);
  t.equal(await again.scard('all'), 32);
});

t.test('under a steady stream of writes the WAL is copied back and starts over, and nothing is lost', async (t) => {
  const dir = await tempDir();
  const store = new EmbeddedStore({ path: dir });
  const n = 3_000;
  let next = 0;
  let largest = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < n; i = next++) {
        await store.atomic([{ op: 'set', key: `k${i}`, value: 'x'.repeat(200) }, { op: 'sadd', key: 'all', member: `k${i}` }], [`k${i}`]);
        largest = Math.max(largest, statSync(join(dir, 'tollgate.db-wal')).size);
      }
    }),
  );
  // Each commit here appends a few 4 KiB pages: without checkpoints the WAL would reach about 40 MiB.
  // On a quiet machine it stays under 10; the bound is half the unchecked size, because a checkpoint
  // thread starved of CPU (a loaded CI machine) holds writes back only for GATE_MAX_MS at a time.
  t.ok(largest < 20 * 1024 * 1024, `the WAL stayed bounded (largest ${(largest / 1048576).toFixed(1)} MiB)`);
  await store.close();
  const again = new EmbeddedStore({ path: dir });
  t.teardown(() => again.close());
  t.equal(await again.scard('all'), n, 'every write is there after a restart');
  t.equal(await again.get(`k${n - 1}`), 'x'.repeat(200));
});

t.test('checkpoints run on their own thread: the store\'s connection never checkpoints, a cycle copies everything and the WAL starts over', async (t) => {
  const dir = await tempDir();
  const store = new EmbeddedStore({ path: dir });
  t.teardown(() => store.close());
  const db = (store as unknown as { db: { pragma(s: string, o?: { simple: boolean }): unknown } }).db;
  t.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0, 'automatic checkpoints are off on the event loop');
  for (let i = 0; i < 100; i++) await store.set(`k${i}`, 'x'.repeat(200));
  const first = await store.checkpoint();
  t.ok(first !== null && first.log >= 100 && first.checkpointed === first.log, `every frame copied (${JSON.stringify(first)})`);
  await store.set('one', 'y');
  t.same(await store.checkpoint(), { log: 1, checkpointed: 1 }, 'the next write started the WAL over');
  t.equal(await store.get('k99'), 'x'.repeat(200));
});

t.test('if the checkpoint thread dies, SQLite checkpoints by itself again and writes go on', async (t) => {
  const dir = await tempDir();
  const errors: string[] = [];
  const store = new EmbeddedStore({ path: dir, onError: (e) => errors.push(e.message) });
  t.teardown(() => store.close());
  const internals = store as unknown as { db: { pragma(s: string, o?: { simple: boolean }): unknown }; checkpointer: { worker: { terminate(): Promise<number> } } };
  await internals.checkpointer.worker.terminate();
  await until(() => errors.length > 0, 2_000, 'the failure report');
  t.match(errors[0], /checkpoint thread exited/, 'the failure is reported');
  t.equal(internals.db.pragma('wal_autocheckpoint', { simple: true }), 1000, "SQLite's own checkpoints are back");
  t.equal(await store.checkpoint(), null, 'no more rounds on the thread');
  for (let i = 0; i < 300; i++) await store.set(`k${i}`, 'x'.repeat(200));
  t.equal(await store.get('k299'), 'x'.repeat(200), 'writes never wait for a thread that is gone');
});

t.test('after a failed fdatasync every operation fails, on every instance, and nothing more is checkpointed', async (t) => {
  const dir = await tempDir();
  // A disk that starts failing: every sync from the switch on reports EIO, as Linux does once.
  let failing = false;
  const sync: SyncFile = (fd, cb) => {
    if (!failing) return fdatasync(fd, cb);
    setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5, syscall: 'fdatasync' })));
  };
  const a = new EmbeddedStore({ path: dir, fdatasync: sync });
  const b = new EmbeddedStore({ path: dir });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.set('before', '1');
  t.ok(await a.checkpoint(), 'checkpoints run while the disk works');

  failing = true;
  const [x, y] = await Promise.allSettled([a.set('lost', '2'), b.sadd('set', 'm')]);
  for (const [name, r] of [['the write waiting for the failed sync', x], ["the other instance's write in the same batch", y]] as const) {
    t.equal(r.status, 'rejected', `${name} is refused`);
    t.ok(r.status === 'rejected' && r.reason instanceof StoreUnavailableError && /fdatasync EIO/.test((r.reason as Error).message), `${name}: StoreUnavailableError (fdatasync EIO)`);
  }
  // The disk's state is unknown now: nothing is read or written until a restart recovers from it.
  const later: [string, () => Promise<unknown>][] = [
    ['a read', () => a.get('before')],
    ['a write', () => a.set('after', '3')],
    ['a read on the other instance', () => b.get('before')],
    ['a set read', () => b.smembers('set')],
  ];
  for (const [name, op] of later) await t.rejects(op(), StoreUnavailableError, `${name} fails`);
  t.equal(await a.checkpoint(), null, 'no checkpoint runs after the failure');

  // A restart recovers what the disk has: the write acknowledged before the failure.
  await a.close();
  await b.close();
  const again = new EmbeddedStore({ path: dir });
  t.teardown(() => again.close());
  t.equal(await again.get('before'), '1', 'what was acknowledged before the failure is there after a restart');
});

t.test('a store left open does not keep the process alive, and one opened after a thread failure checkpoints by itself', async (t) => {
  const dir = await tempDir();
  const code = `
    const { EmbeddedStore } = await import(${JSON.stringify(join(root, 'src/sessions/embedded.ts'))});
    const a = new EmbeddedStore({ path: ${JSON.stringify(dir)} });
    for (let i = 0; i < 300; i++) await a.set('k' + i, 'v');
    await a.checkpointer.worker.terminate();
    await new Promise((r) => setTimeout(r, 50));
    const b = new EmbeddedStore({ path: ${JSON.stringify(dir)} });
    console.log('autocheckpoint ' + b.db.pragma('wal_autocheckpoint', { simple: true }));
    await b.set('after', 'v');
    console.log('not closing');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code_ = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  t.equal(code_, 0, `the process ended by itself: ${err.slice(0, 500)}`);
  t.match(out, /autocheckpoint 1000/, "an instance opened after the thread died uses SQLite's own checkpoints");
  t.match(out, /not closing/);
});

t.test('every acknowledged write survives kill -9', async (t) => {
  const dir = await tempDir();
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/sessions/embedded-writer.ts'), dir], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acked: string[] = [];
  let partial = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => {
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('acked ')) acked.push(line.slice(6));
    if (acked.length >= 300 && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await closed;
  t.equal(child.signalCode, 'SIGKILL', `the writer was killed, not crashed: ${stderr}`);
  t.ok(acked.length >= 300, `${acked.length} writes acknowledged`);

  const store = new EmbeddedStore({ path: dir });
  t.teardown(() => store.close());
  const missing: string[] = [];
  for (const key of acked) {
    const i = key.slice(1);
    if ((await store.get(key)) !== `v${i}`) missing.push(key);
    if ((await store.get(`${key}:pair`)) !== `p${i}`) missing.push(`${key}:pair`);
    if (!(await store.sismember('index', key))) missing.push(`index/${key}`);
  }
  t.same(missing, [], 'no acknowledged write is lost');
  t.ok(Number(await store.get('count')) >= acked.length, 'the counter has every acknowledged increment');
});
