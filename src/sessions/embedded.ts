import { EventEmitter } from 'node:events';
import { mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError, type Store, type WriteOp } from './store.js';

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
}

/**
 * Channels is one in-process message bus per database file, so that two EmbeddedStore instances
 * opened on the same path in one process (tests, or a reload that builds a new runtime before
 * closing the old one) hear each other's publish the way two nodes sharing Redis would.
 */
const channels = new Map<string, { bus: EventEmitter; refs: number }>();

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
 *   caller -> EmbeddedStore (sync better-sqlite3, WAL, synchronous=FULL) -> <path>/tollgate.db
 *
 * Every write is committed and fsynced before its promise resolves, so anything acknowledged
 * survives kill -9 and power loss. Text columns compare with SQLite's BINARY collation (memcmp
 * over UTF-8), which gives set members the same byte order Redis sorted sets use.
 *
 * Methods are async to match Store but do their work synchronously: better-sqlite3 has no
 * event-loop round trip and a statement on a local file takes microseconds. Pub/sub stays
 * inside this process, because this backend serves one node.
 */
export class EmbeddedStore implements Store {
  readonly kind = 'embedded';
  readonly file: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly bus: EventEmitter;
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

  constructor(opts: EmbeddedStoreOptions) {
    mkdirSync(opts.path, { recursive: true, mode: 0o700 });
    this.file = join(realpathSync(opts.path), 'tollgate.db');
    this.now = opts.now ?? Date.now;
    this.onError = opts.onError;
    this.db = new Database(this.file);
    // WAL lets readers run beside the writer; FULL fsyncs the WAL on every commit, which is what
    // makes an acknowledged write survive power loss and not only a process crash.
    // https://www.sqlite.org/pragma.html#pragma_synchronous
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
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

    const shared = channels.get(this.file) ?? { bus: new EventEmitter().setMaxListeners(0), refs: 0 };
    shared.refs++;
    channels.set(this.file, shared);
    this.bus = shared.bus;

    this.q.purge.run(this.now());
    this.purgeTimer = setInterval(() => {
      try {
        this.q.purge.run(this.now());
      } catch (err) {
        this.onError?.(asError(err));
      }
    }, opts.purgeIntervalMs ?? 60_000);
    // The purge only reclaims space; it must never keep the process alive on shutdown.
    this.purgeTimer.unref();
  }

  async get(key: string): Promise<string | null> {
    return this.run(() => this.q.get.get(key, this.now())?.value ?? null);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.run(() => this.q.set.run(key, value, this.expiry(ttlMs)));
  }

  async createIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    return this.run(() => {
      const now = this.now();
      return this.q.createIfAbsent.run(key, value, this.expiry(ttlMs, now), now).changes === 1;
    });
  }

  async consume(key: string): Promise<string | null> {
    // DELETE ... RETURNING reads and removes in one statement, so two callers cannot both see it.
    return this.run(() => {
      const row = this.q.takeKv.get(key);
      return row && this.isLive(row, this.now()) ? row.value : null;
    });
  }

  async del(...keys: string[]): Promise<number> {
    return this.run(() =>
      this.db.transaction(() => {
        const now = this.now();
        let existed = 0;
        for (const key of keys) {
          const row = this.q.takeKv.get(key);
          const hadKv = row !== undefined && this.isLive(row, now);
          const hadSet = this.q.delSet.run(key).changes > 0;
          if (hadKv || hadSet) existed++;
        }
        return existed;
      }).immediate(),
    );
  }

  async sadd(key: string, member: string): Promise<void> {
    this.run(() => this.q.sadd.run(key, member));
  }

  async srem(key: string, member: string): Promise<void> {
    this.run(() => this.q.srem.run(key, member));
  }

  async smembers(key: string, page?: { offset: number; limit: number }): Promise<string[]> {
    return this.run(() => {
      const rows = page
        ? this.q.membersPage.all(key, Math.max(0, page.limit), Math.max(0, page.offset))
        : this.q.members.all(key);
      return rows.map((r) => r.member);
    });
  }

  async scard(key: string): Promise<number> {
    return this.run(() => this.q.scard.get(key)?.n ?? 0);
  }

  async sismember(key: string, member: string): Promise<boolean> {
    return this.run(() => this.q.sismember.get(key, member) !== undefined);
  }

  async incr(key: string, ttlMs: number): Promise<number> {
    return this.run(() =>
      this.db.transaction(() => {
        const now = this.now();
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
      }).immediate(),
    );
  }

  async atomic(ops: WriteOp[], ifAbsent: string[] = []): Promise<boolean> {
    return this.run(() =>
      this.db.transaction(() => {
        const now = this.now();
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
      }).immediate(),
    );
  }

  async publish(channel: string, message: string): Promise<void> {
    this.bus.emit(channel, message);
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
    const shared = channels.get(this.file);
    if (shared && --shared.refs === 0) channels.delete(this.file);
    this.db.close();
  }

  /** expiry turns a TTL into an absolute deadline; ttlMs <= 0 or absent means no expiry. */
  private expiry(ttlMs: number | undefined, now = this.now()): number | null {
    return ttlMs !== undefined && ttlMs > 0 ? now + Math.ceil(ttlMs) : null;
  }

  private isLive(row: Row, now: number): boolean {
    return row.expires_at === null || row.expires_at > now;
  }

  /** run maps disk-level SQLite failures to StoreUnavailableError and lets programming errors through. */
  private run<T>(fn: () => T): T {
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
