import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { StoreUnavailableError, type Store, type WriteOp } from './store.js';

/** TieredStoreOptions tunes the in-process cache in front of a Store. */
export interface TieredStoreOptions {
  /** max entries kept; the least recently used goes first. Default 10 000. */
  readonly max?: number;
  /**
   * ttlMs bounds how long an entry is trusted, default 5 s. Invalidations normally drop entries at
   * once; the TTL is the safety net for a missed one (a subscriber reconnecting, a failed
   * publish). It also bounds how long a cached value may outlive its own expiry in the backend, so
   * records that must expire exactly (sessions) carry their own deadline.
   */
  readonly ttlMs?: number;
  /**
   * maxStaleMs is how long past ttlMs `get` may still answer from the cache while the backend is
   * unavailable. Default 60 s: a short outage does not log everyone out, a long one does not keep
   * revoked sessions alive.
   */
  readonly maxStaleMs?: number;
  /** channel carries invalidations between nodes. Default `tollgate:invalidate`. */
  readonly channel?: string;
  /** onError hears failures nobody awaits: a failed invalidation publish, a malformed message. */
  readonly onError?: (err: Error) => void;
  /** now is the cache clock; tests inject one to age entries without sleeping. */
  readonly now?: () => number;
}

/** ABSENT marks a key known not to exist, so a negative answer is as cheap as a positive one. */
const ABSENT: unique symbol = Symbol('absent');
type Cached = string | typeof ABSENT;

/** Invalidation is the message on the invalidation channel. */
interface Invalidation {
  /** from is the sending TieredStore, which has already dropped the keys itself. */
  readonly from: string;
  readonly keys: readonly string[];
}

/**
 * TieredStore puts an LRU in front of any Store and keeps every node's LRU coherent.
 *
 *   hot path -> peek (sync, memory only)
 *   get      -> LRU hit | backend.get -> fill
 *   write    -> backend write -> drop locally -> publish keys -> every other node drops them
 *
 * Only plain values read through `get` are cached. Sets and counters pass straight through.
 * Call `start()` once before use, so that invalidations from other nodes are heard.
 */
export class TieredStore implements Store {
  readonly kind: string;
  readonly backend: Store;
  private readonly cache: LRUCache<string, Cached>;
  private readonly channel: string;
  private readonly maxStaleMs: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly id = randomUUID();
  /**
   * pending holds one token per key with a backend read in flight. An invalidation deletes the
   * token, so a read that started before a write cannot put the old value back afterwards.
   */
  private readonly pending = new Map<string, object>();
  private started: Promise<void> | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private hits = 0;
  private misses = 0;

  constructor(backend: Store, opts: TieredStoreOptions = {}) {
    this.backend = backend;
    this.kind = `${backend.kind}+lru`;
    this.channel = opts.channel ?? 'tollgate:invalidate';
    this.maxStaleMs = opts.maxStaleMs ?? 60_000;
    this.onError = opts.onError;
    this.cache = new LRUCache<string, Cached>({
      max: opts.max ?? 10_000,
      ttl: opts.ttlMs ?? 5_000,
      // Expired entries stay until evicted, so `get` can fall back to them during an outage.
      noDeleteOnStaleGet: true,
      // lru-cache reads the clock at most once per ms by default; an injected clock jumps, so
      // read it every time.
      ...(opts.now ? { perf: { now: opts.now }, ttlResolution: 0 } : {}),
    });
  }

  /** start subscribes to the invalidation channel; idempotent. */
  start(): Promise<void> {
    this.started ??= this.backend.subscribe(this.channel, (m) => this.onInvalidation(m)).then((off) => {
      this.unsubscribe = off;
    });
    return this.started;
  }

  /**
   * peek answers from memory only and never waits: the value, null when the key is known to be
   * absent, undefined when this node does not know. This is what the proxy hot path calls.
   */
  peek(key: string): string | null | undefined {
    const v = this.cache.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return v === ABSENT ? null : v;
  }

  /** stats reports cache hits and misses (peek and get) for metrics. */
  stats(): { hits: number; misses: number } {
    return { hits: this.hits, misses: this.misses };
  }

  async get(key: string): Promise<string | null> {
    const cached = this.peek(key);
    if (cached !== undefined) return cached;
    const token = {};
    this.pending.set(key, token);
    try {
      const value = await this.backend.get(key);
      if (this.pending.get(key) === token) this.cache.set(key, value ?? ABSENT);
      return value;
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        const stale = this.stale(key);
        if (stale !== undefined) return stale;
      }
      throw err;
    } finally {
      if (this.pending.get(key) === token) this.pending.delete(key);
    }
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.write([key], () => this.backend.set(key, value, ttlMs));
  }

  async createIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    return this.write([key], () => this.backend.createIfAbsent(key, value, ttlMs), (created) => created);
  }

  async consume(key: string): Promise<string | null> {
    return this.write([key], () => this.backend.consume(key), (value) => value !== null);
  }

  async del(...keys: string[]): Promise<number> {
    return this.write(keys, () => this.backend.del(...keys));
  }

  async atomic(ops: WriteOp[], ifAbsent?: string[]): Promise<boolean> {
    // Only set and del change what `get` returns; set membership is never cached.
    const keys = ops.filter((o) => o.op === 'set' || o.op === 'del').map((o) => o.key);
    return this.write(keys, () => this.backend.atomic(ops, ifAbsent), (applied) => applied);
  }

  async incr(key: string, ttlMs: number): Promise<number> {
    // Counters are read through incr's result, not get; announcing every increment would flood
    // the channel, so only this node's copy (if any) is dropped.
    try {
      return await this.backend.incr(key, ttlMs);
    } finally {
      this.drop([key]);
    }
  }

  sadd(key: string, member: string): Promise<void> {
    return this.backend.sadd(key, member);
  }

  srem(key: string, member: string): Promise<void> {
    return this.backend.srem(key, member);
  }

  smembers(key: string, page?: { offset: number; limit: number }): Promise<string[]> {
    return this.backend.smembers(key, page);
  }

  scard(key: string): Promise<number> {
    return this.backend.scard(key);
  }

  sismember(key: string, member: string): Promise<boolean> {
    return this.backend.sismember(key, member);
  }

  publish(channel: string, message: string): Promise<void> {
    return this.backend.publish(channel, message);
  }

  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    return this.backend.subscribe(channel, handler);
  }

  ping(): Promise<void> {
    return this.backend.ping();
  }

  /** close stops listening and closes the backend, which this decorator owns. */
  async close(): Promise<void> {
    const off = this.unsubscribe;
    this.unsubscribe = null;
    if (off) {
      try {
        await off();
      } catch {
        // The backend is going away anyway; closing it below releases the subscription.
      }
    }
    this.cache.clear();
    await this.backend.close();
  }

  /**
   * write runs a backend write, then drops the keys here and tells the other nodes. The local
   * drop happens even when the write fails: a timed-out command may still have been applied.
   * Other nodes are told only when something changed.
   */
  private async write<T>(keys: string[], fn: () => Promise<T>, changed: (r: T) => boolean = () => true): Promise<T> {
    let result: T;
    try {
      result = await fn();
    } finally {
      this.drop(keys);
    }
    if (keys.length > 0 && changed(result)) await this.announce(keys);
    return result;
  }

  private drop(keys: readonly string[]): void {
    for (const key of keys) {
      this.cache.delete(key);
      this.pending.delete(key);
    }
  }

  /**
   * announce publishes changed keys. A failed publish does not fail the write, which already
   * happened; the other nodes' TTL covers the gap.
   */
  private async announce(keys: string[]): Promise<void> {
    const message: Invalidation = { from: this.id, keys };
    try {
      await this.backend.publish(this.channel, JSON.stringify(message));
    } catch (err) {
      this.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onInvalidation(raw: string): void {
    let msg: Invalidation;
    try {
      msg = JSON.parse(raw) as Invalidation;
    } catch (err) {
      this.onError?.(new Error('tiered store: malformed invalidation message', { cause: err }));
      return;
    }
    if (msg.from === this.id || !Array.isArray(msg.keys)) return;
    this.drop(msg.keys.filter((k): k is string => typeof k === 'string'));
  }

  /** stale returns an expired entry no older than maxStaleMs past its TTL, for use during an outage. */
  private stale(key: string): string | null | undefined {
    const v = this.cache.get(key, { allowStale: true });
    if (v === undefined || this.cache.getRemainingTTL(key) < -this.maxStaleMs) return undefined;
    return v === ABSENT ? null : v;
  }
}
