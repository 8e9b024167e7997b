import { EventEmitter } from 'node:events';
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { Checkpointer, type CheckpointResult } from './checkpointer.js';
import { StoreUnavailableError, type ReadOp, type ReadResults, type ReadThrough, type Store, type WriteOp } from './store.js';

/**
 * EmbeddedStoreOptions configures the single-machine store.
 *
 * `now` is the clock that TTLs are measured against; tests inject one so that expiry is tested
 * without sleeping. `purgeIntervalMs` is how often expired rows are deleted from disk (reads
 * already treat them as absent, so this only reclaims space).
 */
export interface EmbeddedStoreOptions {
  readonly path: string;
  readonly now?: () => number;
  readonly purgeIntervalMs?: number;
  /** onError hears about failures that have no caller to reject, such as a throwing subscriber. */
  readonly onError?: (err: Error) => void;
  /**
   * fdatasync syncs the WAL; fs.fdatasync unless given. Tests pass one that fails as a dying disk's
   * does, which no disk here can. The first store opened on a file sets it for every instance.
   */
  readonly fdatasync?: SyncFile;
}

/** SyncFile is fs.fdatasync's callback form. */
export type SyncFile = (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void;

/**
 * Batch is the commits that one fdatasync makes durable; `done` settles when it has.
 */
interface Batch {
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Every caller awaits `done` itself; this only keeps a rejection nobody else awaits from being unhandled.
  done.catch(() => {});
  return { done, resolve, reject };
}

/**
 * Journal is group commit for one database file: a commit is written to the WAL at once (SQLite
 * synchronous=NORMAL does not fsync it) and acknowledged only after an fdatasync of the WAL that
 * started after it has finished. Every commit made while one fdatasync runs joins the next, so
 * 16 concurrent writers pay for one or two fsyncs, not 16, and the event loop never waits for
 * the disk (fdatasync runs on libuv's thread pool).
 *
 *   write -> SQLite commit (WAL, page cache) -> journal.commit(keys) -> fdatasync(WAL) -> resolve
 *   read  -> SQLite read -> key written by a commit not yet on disk? wait for its fdatasync
 *
 * fsync(2) makes every byte written to the file before the call durable, through any descriptor,
 * so syncing our own read-only descriptor covers SQLite's writes. A read waits for the sync of the
 * last write to its key, so nothing that could vanish in a power cut is ever shown to a caller,
 * just as with synchronous=FULL. After a failed fdatasync the file's state on disk is unknown
 * (Linux may drop the dirty pages and report the error once), so the journal fails every later
 * operation until the process restarts and SQLite recovers from what is really on disk.
 */
class Journal {
  private readonly fd: number;
  /** pending is the batch of commits that no started fdatasync covers yet. */
  private pending: Batch | null = null;
  private syncing: Batch | null = null;
  /** unsynced maps each key written by a commit that is not yet on disk to the batch that syncs it. */
  private readonly unsynced = new Map<string, Batch>();
  failure: StoreUnavailableError | null = null;

  /** onFailure runs once, at the first failed fdatasync. */
  constructor(
    wal: string,
    private readonly sync: SyncFile,
    private readonly onFailure: () => void,
  ) {
    this.fd = openSync(wal, 'r');
    // The WAL may have just been created: make its directory entry durable too, once.
    const dir = openSync(dirname(wal), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** commit records a commit that wrote keys; it resolves once that commit is on disk. */
  commit(keys: Iterable<string>): Promise<void> {
    let b = this.pending;
    if (b === null) {
      b = this.pending = newBatch();
      // On a later turn, so every commit of this turn joins the same fdatasync.
      if (this.syncing === null) setImmediate(() => this.flush());
    }
    for (const k of keys) this.unsynced.set(k, b);
    return b.done;
  }

  /** seen resolves once the last commit that wrote any of keys is on disk; undefined when all are. */
  seen(keys: Iterable<string>): Promise<void> | undefined {
    let wait: Batch | undefined;
    for (const k of keys) {
      const b = this.unsynced.get(k);
      if (b === undefined) continue;
      if (b === this.pending) return b.done;
      wait = b;
    }
    return wait?.done;
  }

  /** drain resolves when no commit is waiting for its fdatasync. */
  async drain(): Promise<void> {
    for (let b = this.pending ?? this.syncing; b !== null; b = this.pending ?? this.syncing) {
      await b.done.catch(() => {
        // The failure went to the writers that waited for this batch; closing goes on.
      });
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private flush(): void {
    const b = this.pending;
    if (b === null || this.syncing !== null) return;
    this.pending = null;
    this.syncing = b;
    this.sync(this.fd, (err) => {
      this.syncing = null;
      for (const [k, owner] of this.unsynced) if (owner === b) this.unsynced.delete(k);
      if (err && this.failure === null) {
        this.failure = new StoreUnavailableError(`embedded store unavailable (fdatasync ${err.code ?? 'failed'})`, { cause: err });
        this.onFailure();
      }
      if (this.failure !== null) {
        b.reject(this.failure);
        const next = this.pending;
        this.pending = null;
        next?.reject(this.failure);
        return;
      }
      b.resolve();
      this.flush();
    });
  }
}

/**
 * files holds what every EmbeddedStore open on one database file in this process shares: the
 * message bus, so two instances (tests, or a reload that builds a new runtime before closing the
 * old one) hear each other's publish the way two nodes sharing Redis would, and the journal, so
 * their commits share fsyncs and a read in one waits for a write in the other.
 */
interface SharedFile {
  readonly bus: EventEmitter;
  readonly journal: Journal;
  readonly checkpointer: Checkpointer;
  /** stores are the open instances on the file. */
  readonly stores: Set<EmbeddedStore>;
}
const files = new Map<string, SharedFile>();

/** Relay carries a publish to the other processes that have the same file open (worker siblings). */
type Relay = (file: string, channel: string, message: string) => void;
let relay: Relay | null = null;

/**
 * relayEmbeddedBus makes every publish on an embedded store also go to `send`, for the other
 * processes of a node (src/workers.ts); `relayEmbeddedBus.deliver` hands their publishes to this
 * process's stores on the same file, as if published here.
 */
export function relayEmbeddedBus(send: Relay | null): void {
  relay = send;
}
relayEmbeddedBus.deliver = (file: string, channel: string, message: string): void => {
  files.get(file)?.bus.emit(channel, message);
};

/**
 * UNAVAILABLE_CODES are SQLite result codes that mean "the disk cannot answer now", as opposed to a
 * bug in a statement; they become StoreUnavailableError like a Redis outage does.
 * See https://www.sqlite.org/rescode.html.
 */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|NOMEM|CORRUPT|NOTADB)/;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE IF NOT EXISTS sets (
    key TEXT NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (key, member)
  ) WITHOUT ROWID;
`;

type Row = { value: string; expires_at: number | null };

/**
 * EmbeddedStore keeps sessions and state in one SQLite file, `<path>/tollgate.db`, for a
 * single-machine deployment.
 *
 *   caller -> EmbeddedStore (sync better-sqlite3, WAL) -> <path>/tollgate.db
 *                 ├─ Journal: group commit, one fdatasync of the WAL per batch of commits
 *                 └─ Checkpointer: copies the WAL back into the file on a worker thread
 *
 * Every write is committed and fsynced before its promise resolves, so anything acknowledged
 * survives kill -9 and power loss; commits that arrive while an fsync runs share the next one
 * (see Journal). Text columns compare with SQLite's BINARY collation (memcmp over UTF-8), which
 * gives set members the same byte order Redis sorted sets use.
 *
 * Statements run synchronously: better-sqlite3 has no event-loop round trip and a statement on a
 * local file takes microseconds. Only the wait for the disk is asynchronous. Each write is its own
 * SQLite transaction, committed before the method returns, so atomic(), createIfAbsent and consume
 * are decided by SQLite exactly as before, also against other connections to the file. Pub/sub
 * stays inside this process, because this backend serves one node.
 */
export class EmbeddedStore implements Store {
  readonly kind = 'embedded';
  readonly file: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly bus: EventEmitter;
  private readonly journal: Journal;
  private readonly checkpointer: Checkpointer;
  private readonly listeners = new Set<{ channel: string; fn: (message: string) => void }>();
  private readonly purgeTimer: NodeJS.Timeout;
  private closed = false;

  private readonly q: {
    get: Database.Statement<[string, number], Row>;
    set: Database.Statement<[string, string, number | null]>;
    createIfAbsent: Database.Statement<[string, string, number | null, number]>;
    takeKv: Database.Statement<[string], Row>;
    delSet: Database.Statement<[string]>;
    existsSet: Database.Statement<[string], { one: number }>;
    sadd: Database.Statement<[string, string]>;
    srem: Database.Statement<[string, string]>;
    members: Database.Statement<[string], { member: string }>;
    membersPage: Database.Statement<[string, number, number], { member: string }>;
    scard: Database.Statement<[string], { n: number }>;
    sismember: Database.Statement<[string, string], { one: number }>;
    purge: Database.Statement<[number]>;
    ping: Database.Statement<[]>;
  };

  /** tx are the multi-statement writes, compiled once (better-sqlite3 builds a wrapper per transaction()). */
  private readonly tx: {
    del: Database.Transaction<(keys: readonly string[], now: number) => number>;
    incr: Database.Transaction<(key: string, ttlMs: number, now: number) => number>;
    atomic: Database.Transaction<(ops: readonly WriteOp[], ifAbsent: readonly string[], now: number) => boolean>;
    read: Database.Transaction<(reads: readonly ReadOp[], now: number) => (string | null | string[])[]>;
    via: Database.Transaction<(via: string, then: readonly ReadOp[], now: number) => { value: string; results: (string | null | string[])[] } | null>;
  };

  constructor(opts: EmbeddedStoreOptions) {
    mkdirSync(opts.path, { recursive: true, mode: 0o700 });
    this.file = join(realpathSync(opts.path), 'tollgate.db');
    this.now = opts.now ?? Date.now;
    this.onError = opts.onError;
    this.db = new Database(this.file);
    // WAL lets readers run beside the writer. NORMAL writes each commit to the WAL without an
    // fsync; the Journal fsyncs the WAL before any commit is acknowledged, once per batch, which
    // is what makes an acknowledged write survive power loss and not only a process crash. NORMAL
    // still fsyncs at checkpoints and when the WAL restarts, so the file stays consistent.
    // https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);

    const live = '(expires_at IS NULL OR expires_at > ?)';
    this.q = {
      get: this.db.prepare(`SELECT value, expires_at FROM kv WHERE key = ? AND ${live}`),
      set: this.db.prepare(
        `INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      ),
      // One statement, so it is atomic even against another process on the same file: insert, or
      // replace a row that has already expired (it only looks present until the purge runs).
      createIfAbsent: this.db.prepare(
        `INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
         WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?`,
      ),
      takeKv: this.db.prepare('DELETE FROM kv WHERE key = ? RETURNING value, expires_at'),
      delSet: this.db.prepare('DELETE FROM sets WHERE key = ?'),
      existsSet: this.db.prepare('SELECT 1 AS one FROM sets WHERE key = ? LIMIT 1'),
      sadd: this.db.prepare('INSERT OR IGNORE INTO sets (key, member) VALUES (?, ?)'),
      srem: this.db.prepare('DELETE FROM sets WHERE key = ? AND member = ?'),
      members: this.db.prepare('SELECT member FROM sets WHERE key = ? ORDER BY member'),
      membersPage: this.db.prepare('SELECT member FROM sets WHERE key = ? ORDER BY member LIMIT ? OFFSET ?'),
      scard: this.db.prepare('SELECT count(*) AS n FROM sets WHERE key = ?'),
      sismember: this.db.prepare('SELECT 1 AS one FROM sets WHERE key = ? AND member = ?'),
      purge: this.db.prepare('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      ping: this.db.prepare('SELECT 1'),
    };

    this.tx = {
      del: this.db.transaction((keys: readonly string[], now: number) => {
        let existed = 0;
        for (const key of keys) {
          const row = this.q.takeKv.get(key);
          const hadKv = row !== undefined && this.isLive(row, now);
          const hadSet = this.q.delSet.run(key).changes > 0;
          if (hadKv || hadSet) existed++;
        }
        return existed;
      }),
      incr: this.db.transaction((key: string, ttlMs: number, now: number) => {
        const row = this.q.get.get(key, now);
        if (!row) {
          this.q.set.run(key, '1', this.expiry(ttlMs, now));
          return 1;
        }
        if (!/^-?\d+$/.test(row.value)) throw new Error('incr: value is not an integer');
        const next = Number(row.value) + 1;
        // Like the Redis backend, only a counter without a TTL gets one here: later increments
        // must not extend a fixed window.
        this.q.set.run(key, String(next), row.expires_at ?? this.expiry(ttlMs, now));
        return next;
      }),
      atomic: this.db.transaction((ops: readonly WriteOp[], ifAbsent: readonly string[], now: number) => {
        for (const key of ifAbsent) {
          if (this.q.get.get(key, now) || this.q.existsSet.get(key)) return false;
        }
        for (const op of ops) {
          switch (op.op) {
            case 'set':
              this.q.set.run(op.key, op.value, this.expiry(op.ttlMs, now));
              break;
            case 'del':
              this.q.takeKv.get(op.key);
              this.q.delSet.run(op.key);
              break;
            case 'sadd':
              this.q.sadd.run(op.key, op.member);
              break;
            case 'srem':
              this.q.srem.run(op.key, op.member);
              break;
          }
        }
        return true;
      }),
      // One read transaction: the reads see one snapshot, and take SQLite's WAL read lock once.
      read: this.db.transaction((reads: readonly ReadOp[], now: number) => reads.map((r) => this.readOne(r.op, r.key, now))),
      via: this.db.transaction((via: string, then: readonly ReadOp[], now: number) => {
        const value = this.q.get.get(via, now)?.value;
        return value === undefined ? null : { value, results: then.map((r) => this.readOne(r.op, r.key + value, now)) };
      }),
    };

    let shared = files.get(this.file);
    if (shared === undefined) {
      // The schema statement above has opened the WAL, so the file exists now.
      const stores = new Set<EmbeddedStore>();
      const checkpointer = new Checkpointer(
        this.file,
        (err) => stores.values().next().value?.onError?.(err),
        // Without the thread, SQLite checkpoints again by itself, on the event loop (its default, 1000 pages).
        () => {
          for (const s of stores) s.autocheckpoint(1000);
        },
      );
      shared = {
        bus: new EventEmitter().setMaxListeners(0),
        // After a failed fdatasync nothing more is copied into the database file: what is on disk
        // stays as it was for SQLite's recovery at the next start.
        journal: new Journal(`${this.file}-wal`, opts.fdatasync ?? fdatasync, () => void checkpointer.close()),
        checkpointer,
        stores,
      };
      files.set(this.file, shared);
    }
    shared.stores.add(this);
    this.bus = shared.bus;
    this.journal = shared.journal;
    this.checkpointer = shared.checkpointer;
    // Checkpoints run on their own thread (Checkpointer), not inside a commit on the event loop.
    if (this.checkpointer.healthy) this.autocheckpoint(0);

    this.q.purge.run(this.now());
    this.purgeTimer = setInterval(() => {
      try {
        this.run(() => this.q.purge.run(this.now()));
      } catch (err) {
        this.onError?.(asError(err));
      }
    }, opts.purgeIntervalMs ?? 60_000);
    // The purge only reclaims space; it must never keep the process alive on shutdown.
    this.purgeTimer.unref();
  }

  // Every method runs its statements, then waits for the Journal: a write until its commit is on
  // disk, a read (or a write that changed nothing) until what it saw is. A write first waits while a
  // checkpoint's second round holds writes (Checkpointer), which lets the WAL start over; otherwise it
  // runs in the same turn as the call. Either way calls made in order commit in order, but while
  // writes are held, a read called after a write that was not awaited may not see it yet.

  async get(key: string): Promise<string | null> {
    const value = this.run(() => this.q.get.get(key, this.now())?.value ?? null);
    await this.journal.seen([key]);
    return value;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    this.run(() => this.q.set.run(key, value, this.expiry(ttlMs)));
    await this.commit([key]);
  }

  async createIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    const won = this.run(() => {
      const now = this.now();
      return this.q.createIfAbsent.run(key, value, this.expiry(ttlMs, now), now).changes === 1;
    });
    await (won ? this.commit([key]) : this.journal.seen([key]));
    return won;
  }

  async consume(key: string): Promise<string | null> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    // DELETE ... RETURNING reads and removes in one statement, so two callers cannot both see it.
    const row = this.run(() => this.q.takeKv.get(key));
    await (row !== undefined ? this.commit([key]) : this.journal.seen([key]));
    return row && this.isLive(row, this.now()) ? row.value : null;
  }

  async del(...keys: string[]): Promise<number> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    const existed = this.run(() => this.tx.del.immediate(keys, this.now()));
    await this.commit(keys);
    return existed;
  }

  async sadd(key: string, member: string): Promise<void> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    const changed = this.run(() => this.q.sadd.run(key, member).changes > 0);
    await (changed ? this.commit([key]) : this.journal.seen([key]));
  }

  async srem(key: string, member: string): Promise<void> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    const changed = this.run(() => this.q.srem.run(key, member).changes > 0);
    await (changed ? this.commit([key]) : this.journal.seen([key]));
  }

  async smembers(key: string, page?: { offset: number; limit: number }): Promise<string[]> {
    const rows = this.run(() =>
      page ? this.q.membersPage.all(key, Math.max(0, page.limit), Math.max(0, page.offset)) : this.q.members.all(key),
    );
    await this.journal.seen([key]);
    return rows.map((r) => r.member);
  }

  async scard(key: string): Promise<number> {
    const n = this.run(() => this.q.scard.get(key)?.n ?? 0);
    await this.journal.seen([key]);
    return n;
  }

  async sismember(key: string, member: string): Promise<boolean> {
    const found = this.run(() => this.q.sismember.get(key, member) !== undefined);
    await this.journal.seen([key]);
    return found;
  }

  async readMany<const R extends readonly ReadOp[]>(reads: R): Promise<ReadResults<R>> {
    const out = this.run(() => this.tx.read.deferred(reads, this.now()));
    await this.journal.seen(reads.map((r) => r.key));
    return out as ReadResults<R>;
  }

  async readVia<const R extends readonly ReadOp[]>(via: string, then: R): Promise<ReadThrough<R> | null> {
    const out = this.run(() => this.tx.via.deferred(via, then, this.now()));
    await this.journal.seen(out === null ? [via] : [via, ...then.map((r) => r.key + out.value)]);
    return out as ReadThrough<R> | null;
  }

  async incr(key: string, ttlMs: number): Promise<number> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    const n = this.run(() => this.tx.incr.immediate(key, ttlMs, this.now()));
    await this.commit([key]);
    return n;
  }

  async atomic(ops: WriteOp[], ifAbsent: string[] = []): Promise<boolean> {
    if (this.checkpointer.gate() !== undefined) await this.checkpointer.gate();
    const ok = this.run(() => this.tx.atomic.immediate(ops, ifAbsent, this.now()));
    // A refusal is an answer about the ifAbsent keys, so it too waits until what it saw is on disk.
    await (ok ? this.commit(ops.map((o) => o.key)) : this.journal.seen(ifAbsent));
    return ok;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.bus.emit(channel, message);
    relay?.(this.file, channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    // Deliver on a later tick, as a network backend would, so a publisher never runs subscriber
    // code inside its own call, and a throwing handler cannot fail the publish.
    const fn = (message: string): void => {
      setImmediate(() => {
        try {
          handler(message);
        } catch (err) {
          this.onError?.(asError(err));
        }
      });
    };
    const entry = { channel, fn };
    this.listeners.add(entry);
    this.bus.on(channel, fn);
    return async () => {
      this.listeners.delete(entry);
      this.bus.off(channel, fn);
    };
  }

  async ping(): Promise<void> {
    this.run(() => this.q.ping.get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.purgeTimer);
    for (const { channel, fn } of this.listeners) this.bus.off(channel, fn);
    this.listeners.clear();
    // Writes held by a checkpoint's second round have not committed yet: let them, so drain covers them.
    const gate = this.checkpointer.gate();
    if (gate !== undefined) await gate;
    // Writers still waiting for their fsync get their answer before the handle goes away.
    await this.journal.drain();
    const shared = files.get(this.file);
    shared?.stores.delete(this);
    const last = shared !== undefined && shared.stores.size === 0;
    if (last) files.delete(this.file);
    // The checkpoint thread's connection goes first, so the last connection's close can copy the
    // WAL back and remove it, as SQLite does for the last one out.
    if (last) await shared.checkpointer.close();
    this.db.close();
    if (last) shared.journal.close();
  }

  /** readOne is one read of readMany or readVia, inside their transaction. */
  private readOne(op: ReadOp['op'], key: string, now: number): string | null | string[] {
    return op === 'get' ? (this.q.get.get(key, now)?.value ?? null) : this.q.members.all(key).map((m) => m.member);
  }

  /** autocheckpoint sets SQLite's own checkpoint threshold on this connection (0: off). */
  private autocheckpoint(pages: number): void {
    try {
      this.db.pragma(`wal_autocheckpoint = ${pages}`);
    } catch (err) {
      // A closed connection has nothing to checkpoint.
      if (!this.closed) this.onError?.(asError(err));
    }
  }

  /** commit waits until a commit that wrote keys is on disk, and counts it towards the next checkpoint. */
  private commit(keys: Iterable<string>): Promise<void> {
    this.checkpointer.committed();
    return this.journal.commit(keys);
  }

  /** checkpoint copies the WAL back into the database file now, off the event loop; null if it failed. */
  checkpoint(): Promise<CheckpointResult | null> {
    return this.checkpointer.checkpoint();
  }

  /** expiry turns a TTL into an absolute deadline; ttlMs <= 0 or absent means no expiry. */
  private expiry(ttlMs: number | undefined, now = this.now()): number | null {
    return ttlMs !== undefined && ttlMs > 0 ? now + Math.ceil(ttlMs) : null;
  }

  private isLive(row: Row, now: number): boolean {
    return row.expires_at === null || row.expires_at > now;
  }

  /**
   * run maps disk-level SQLite failures to StoreUnavailableError and lets programming errors
   * through. After a failed fsync nothing runs at all (see Journal).
   */
  private run<T>(fn: () => T): T {
    if (this.journal.failure !== null) throw this.journal.failure;
    try {
      return fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (err instanceof Database.SqliteError && typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
        throw new StoreUnavailableError(`embedded store unavailable (${code})`, { cause: err });
      }
      throw err;
    }
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
