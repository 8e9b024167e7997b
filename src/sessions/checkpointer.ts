/**
 * checkpointer: copies the embedded store's WAL back into the database file on a worker thread, so
 * the event loop, which also carries the proxy's traffic, never waits for a checkpoint's reads,
 * writes and fsyncs. Measured on this project's VM: 20,000 writes of 800 bytes, 16 in flight, with
 * SQLite's automatic checkpoints on the event loop stalled it 74-91 times for over 4 ms (up to 15 ms);
 * with them off the loop, once (4.6 ms).
 *
 *   main thread: write -> commit (WAL) -> every CHECKPOINT_EVERY commits: a cycle
 *   cycle:       round 1: worker copies what the WAL holds (PASSIVE; writes go on)
 *                round 2, only if commits landed during round 1: writes wait (gate), the worker
 *                copies the rest, the gate opens, and the next write starts the WAL over
 *
 * PASSIVE never blocks the main connection's readers or writer. SQLite starts the WAL over only at
 * a write that finds every frame copied, which a stream of writes never offers by itself; the short
 * second round makes that moment, and only writers wait for it (reads and the proxy go on). The
 * gate opens after GATE_MAX_MS whatever happens. Durability does not depend on any of this: every
 * commit is in the fsynced WAL before it is acknowledged (see Journal in embedded.ts). If the thread
 * fails, onFailure hands checkpoints back to SQLite's own, on the event loop.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** CHECKPOINT_EVERY is how many commits may pile up in the WAL before a checkpoint cycle starts. */
export const CHECKPOINT_EVERY = 256;
/** GATE_MAX_MS bounds how long writes wait for a second round. */
const GATE_MAX_MS = 1_000;

/**
 * WORKER is the worker's code, evaluated as CommonJS (no file of its own, so it runs the same from
 * dist/ and from sources under a TypeScript loader). It loads better-sqlite3 from the path the
 * main thread resolved.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file, { timeout: 5000 });
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, log: r.log, checkpointed: r.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message) });
  }
});`;

/** CheckpointResult is one round: frames in the WAL, and how many of them are now in the database file. */
export interface CheckpointResult {
  readonly log: number;
  readonly checkpointed: number;
}

type Waiter = (r: CheckpointResult | null) => void;
/** RoundReply is what the thread posts after a round. */
type RoundReply = { ok: boolean; log?: number; checkpointed?: number; error?: string };

/** Checkpointer runs checkpoint cycles of one database file on its own thread, one at a time. */
export class Checkpointer {
  private readonly worker: Worker;
  private commits = 0;
  /** round is the round in progress: 1 (writes go on) or 2 (writes wait); 0 when idle. */
  private round: 0 | 1 | 2 = 0;
  /** duringRound counts commits made while round 1 runs. */
  private duringRound = 0;
  /** again asks for another cycle once this one ends. */
  private again = false;
  private waiting: Waiter[] = [];
  private nextWaiting: Waiter[] = [];
  private gateOpen: (() => void) | null = null;
  private gatePromise: Promise<void> | undefined;
  private gateTimer: NodeJS.Timeout | undefined;
  private state: 'running' | 'closed' | 'failed' = 'running';
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;

  constructor(
    file: string,
    private readonly onError: (err: Error) => void,
    private readonly onFailure: () => void,
  ) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, { eval: true, workerData: { file, sqlite } });
    this.worker.on('message', (m: RoundReply) => this.roundDone(m));
    this.worker.on('error', (err) => this.fail(err));
    this.exited = new Promise<void>((resolve) =>
      this.worker.once('exit', (code) => {
        this.fail(new Error(`embedded store checkpoint thread exited (${code})`));
        resolve();
      }),
    );
    // An idle thread must never keep the process alive (a 'message' listener refs it, so this comes
    // last); a round in progress does, so that writes held by it and checkpoint() callers get their answer.
    this.worker.unref();
  }

  /** healthy tells whether the thread still takes rounds. */
  get healthy(): boolean {
    return this.state === 'running';
  }

  /** committed counts one commit; every CHECKPOINT_EVERY of them a cycle is asked for. */
  committed(): void {
    if (this.round === 1) this.duringRound++;
    if (++this.commits < CHECKPOINT_EVERY) return;
    this.commits = 0;
    this.request();
  }

  /** gate is what a write must wait for before it runs: the second round of a cycle; undefined when none. */
  gate(): Promise<void> | undefined {
    return this.gatePromise;
  }

  /** checkpoint runs a cycle that starts after this call and resolves with its last round; null if it failed or the store closed. */
  checkpoint(): Promise<CheckpointResult | null> {
    if (this.state !== 'running') return Promise.resolve(null);
    return new Promise((resolve) => this.request(resolve));
  }

  /** close ends the thread after the round in progress, if any; every call waits for the same end. */
  close(): Promise<void> {
    this.closing ??= this.end();
    return this.closing;
  }

  private async end(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'closed';
    // Referenced again while it finishes, or the process could end before the thread says it has.
    this.worker.ref();
    if (this.round !== 0) await Promise.race([new Promise<void>((resolve) => this.waiting.push(() => resolve())), this.exited]);
    this.openGate();
    for (const w of this.nextWaiting.splice(0)) w(null);
    this.worker.postMessage('close');
    await this.exited;
  }

  private request(waiter?: Waiter): void {
    if (this.state !== 'running') return;
    if (this.round !== 0) {
      // The cycle in progress may have started before the commits that asked: run one more after it.
      this.again = true;
      if (waiter !== undefined) this.nextWaiting.push(waiter);
      return;
    }
    if (waiter !== undefined) this.waiting.push(waiter);
    this.start(1);
  }

  private start(round: 1 | 2): void {
    this.round = round;
    this.duringRound = 0;
    if (round === 2) {
      this.gatePromise = new Promise<void>((resolve) => (this.gateOpen = resolve));
      this.gateTimer = setTimeout(() => this.openGate(), GATE_MAX_MS);
    }
    this.worker.ref();
    this.worker.postMessage('checkpoint');
  }

  private roundDone(m: RoundReply): void {
    const round = this.round;
    this.round = 0;
    if (!m.ok) this.onError(new Error(`embedded store checkpoint failed: ${m.error ?? 'unknown'}`));
    const result = m.ok ? { log: m.log ?? 0, checkpointed: m.checkpointed ?? 0 } : null;
    // A round copies the frames that were there when it began; SQLite starts the WAL over only at a
    // write that finds every frame copied. Commits during round 1 are not: copy them with writes held.
    if (round === 1 && result !== null && this.state === 'running' && (this.duringRound > 0 || result.checkpointed < result.log)) {
      this.start(2);
      return;
    }
    this.openGate();
    for (const w of this.waiting.splice(0)) w(result);
    if (this.again && this.state === 'running') {
      this.again = false;
      this.waiting = this.nextWaiting;
      this.nextWaiting = [];
      this.start(1);
    } else if (this.state === 'running') {
      this.worker.unref();
    }
  }

  private openGate(): void {
    clearTimeout(this.gateTimer);
    this.gateOpen?.();
    this.gateOpen = null;
    this.gatePromise = undefined;
  }

  /** fail stops rounds for good: held writes go on, every waiter gets null, and SQLite takes checkpoints back. */
  private fail(err: Error): void {
    this.round = 0;
    this.openGate();
    for (const w of [...this.waiting.splice(0), ...this.nextWaiting.splice(0)]) w(null);
    if (this.state !== 'running') return;
    this.state = 'failed';
    this.onError(err);
    this.onFailure();
  }
}
