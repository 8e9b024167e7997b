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
 * The thread starts at the first cycle and leaves after THREAD_IDLE_MS without one, so a node that
 * writes little does not keep it: an idle thread with its own V8 heap and SQLite connection holds
 * about 9 MiB of resident memory, more than a tenth of the whole proxy. A node with a steady stream
 * of writes keeps it running.
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
/** THREAD_IDLE_MS is how long the thread is kept after a cycle for the next one. */
export const THREAD_IDLE_MS = 30_000;

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

/** Thread is one checkpoint thread and its end. */
interface Thread {
  readonly worker: Worker;
  readonly exited: Promise<void>;
  /** Set when it was told to leave (idle or closing): its exit is then no failure. */
  leaving: boolean;
}

/** Checkpointer runs checkpoint cycles of one database file on its own thread, one at a time. */
export class Checkpointer {
  /** The thread, while there is one: started by the first cycle, gone after THREAD_IDLE_MS idle. */
  private thread: Thread | null = null;
  /** A thread told to leave for idleness, which may not have exited yet. */
  private leaving: Thread | null = null;
  private idleTimer: NodeJS.Timeout | undefined;
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

  constructor(
    private readonly file: string,
    private readonly onError: (err: Error) => void,
    private readonly onFailure: () => void,
    private readonly idleMs = THREAD_IDLE_MS,
  ) {}

  /** worker is the thread that runs rounds, started now if there is none (tests reach it to end it). */
  get worker(): Worker {
    return this.ensureThread().worker;
  }

  private ensureThread(): Thread {
    if (this.thread !== null) return this.thread;
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER, { eval: true, workerData: { file: this.file, sqlite } });
    const thread: Thread = {
      worker,
      leaving: false,
      exited: new Promise<void>((resolve) =>
        worker.once('exit', (code) => {
          if (this.thread === thread) this.thread = null;
          if (!thread.leaving) this.fail(new Error(`embedded store checkpoint thread exited (${code})`));
          resolve();
        }),
      ),
    };
    worker.on('message', (m: RoundReply) => this.roundDone(m));
    worker.on('error', (err) => this.fail(err));
    // An idle thread must never keep the process alive (a 'message' listener refs it, so this comes
    // last); a round in progress does, so that writes held by it and checkpoint() callers get their answer.
    worker.unref();
    this.thread = thread;
    return thread;
  }

  /** retire tells an idle thread to leave; the next cycle starts another. */
  private retire(): void {
    const t = this.thread;
    if (t === null || this.round !== 0 || this.state !== 'running') return;
    this.thread = null;
    t.leaving = true;
    t.worker.postMessage('close');
    this.leaving = t;
    void t.exited.then(() => {
      if (this.leaving === t) this.leaving = null;
    });
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
    clearTimeout(this.idleTimer);
    const t = this.thread;
    if (t !== null) {
      t.leaving = true;
      // Referenced again while it finishes, or the process could end before the thread says it has.
      t.worker.ref();
      if (this.round !== 0) await Promise.race([new Promise<void>((resolve) => this.waiting.push(() => resolve())), t.exited]);
    }
    this.openGate();
    for (const w of this.nextWaiting.splice(0)) w(null);
    if (t !== null) {
      t.worker.postMessage('close');
      await t.exited;
    }
    const left = this.leaving;
    if (left !== null) {
      // Referenced, so that the process waits for it as close() promises.
      left.worker.ref();
      await left.exited;
    }
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
    clearTimeout(this.idleTimer);
    const { worker } = this.ensureThread();
    worker.ref();
    worker.postMessage('checkpoint');
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
      this.thread?.worker.unref();
      this.idleTimer = setTimeout(() => this.retire(), this.idleMs);
      this.idleTimer.unref();
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
