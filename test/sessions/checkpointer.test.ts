/**
 * checkpointer: the checkpoint thread starts at the first cycle, leaves when it has been idle, and
 * the next cycle starts another that copies as the first did; closing waits for a thread that is
 * leaving. Run against a real SQLite file in WAL mode, as the embedded store keeps it.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Checkpointer } from '../../src/sessions/checkpointer.js';
import { until } from '../helpers/redis.js';

/** threadOf reads whether a checkpointer has a thread now (internal state, not started by looking). */
function threadOf(cp: Checkpointer): unknown {
  return (cp as unknown as { thread: unknown }).thread;
}

async function walDatabase(t: Test): Promise<{ db: Database.Database; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-checkpointer-'));
  const file = join(dir, 'test.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)');
  t.teardown(async () => {
    db.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { db, file };
}

function write(db: Database.Database, from: number, n: number): void {
  const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
  for (let i = from; i < from + n; i++) put.run(`k${i}`, 'x'.repeat(300));
}

t.test('the thread starts at the first cycle, leaves when idle, and the next cycle starts another', async (t) => {
  const { db, file } = await walDatabase(t);
  const errors: string[] = [];
  let failed = false;
  const cp = new Checkpointer(file, (e) => errors.push(e.message), () => (failed = true), 200);
  t.teardown(() => cp.close());
  t.equal(threadOf(cp), null, 'no thread before any cycle');

  write(db, 0, 50);
  const first = await cp.checkpoint();
  t.ok(first !== null && first.log > 0 && first.checkpointed === first.log, `the first cycle copied every frame (${JSON.stringify(first)})`);
  t.not(threadOf(cp), null, 'the cycle started a thread');

  await until(() => threadOf(cp) === null, 5000, 'the idle thread to leave');
  t.pass('the thread left after the idle time');

  write(db, 50, 50);
  const second = await cp.checkpoint();
  t.ok(second !== null && second.log > 0 && second.checkpointed === second.log, `a new thread copied every frame (${JSON.stringify(second)})`);
  t.same(errors, [], 'no errors');
  t.equal(failed, false, 'a thread leaving for idleness is no failure');
  t.equal((db.prepare('SELECT count(*) AS n FROM kv').get() as { n: number }).n, 100, 'every row is there');
});

t.test('closing waits for a thread that is leaving, and for one in the middle of a cycle', async (t) => {
  const { db, file } = await walDatabase(t);
  const errors: string[] = [];
  const idle = new Checkpointer(file, (e) => errors.push(e.message), () => {}, 50);
  write(db, 0, 20);
  await idle.checkpoint();
  await until(() => threadOf(idle) === null, 5000, 'the idle thread to leave');
  await idle.close();
  t.pass('a checkpointer whose thread left closes');

  const busy = new Checkpointer(file, (e) => errors.push(e.message), () => {});
  write(db, 20, 200);
  const cycle = busy.checkpoint();
  await busy.close();
  const r = await cycle;
  t.ok(r === null || r.checkpointed === r.log, 'the cycle in progress ended before the close did');
  t.equal(await busy.checkpoint(), null, 'no cycle after close');
  t.same(errors, [], 'no errors');
});
