/**
 * Store is the narrow async interface that sessions, SAML state, the directory and rate limits live in.
 *
 *   hot path -> TieredStore (sync LRU peek) -> Store (embedded SQLite | Redis standalone/Sentinel/Cluster)
 *
 * Every backend passes the same contract suite (test/sessions/store.contract.ts).
 *
 * Keys are plain strings chosen by callers. A caller that needs several keys changed together
 * (`atomic`) puts the same hash tag in each of them, `{tag}`, so that Redis Cluster maps them to
 * one slot; the embedded backend ignores tags.
 *
 * Sets are ordered by member (byte order), so listing pages are stable on every backend.
 */
export interface Store {
  /** get returns the value, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /** set writes a value; ttlMs > 0 makes it expire, otherwise it lives until deleted. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** createIfAbsent writes only when the key does not exist; true when it wrote. Atomic across nodes. */
  createIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>;
  /** consume returns the value and deletes it in one atomic step; a second consume gets null. */
  consume(key: string): Promise<string | null>;
  /** del removes keys (plain values, sets or counters); returns how many existed. */
  del(...keys: string[]): Promise<number>;

  /** sadd adds a member to the set at key. */
  sadd(key: string, member: string): Promise<void>;
  /** srem removes a member from the set at key. */
  srem(key: string, member: string): Promise<void>;
  /** smembers lists members in byte order, optionally one page of them. */
  smembers(key: string, page?: { offset: number; limit: number }): Promise<string[]>;
  /** scard counts the members of a set. */
  scard(key: string): Promise<number>;
  /** sismember tells whether member is in the set. */
  sismember(key: string, member: string): Promise<boolean>;

  /**
   * readMany (optional) answers several gets and smembers together, each as get or smembers would
   * answer it, from one snapshot. All keys must share one hash tag (see above). Callers use
   * `readAll`, which issues one call per read, all at once, for a backend without it.
   */
  readMany?<const R extends readonly ReadOp[]>(reads: R): Promise<ReadResults<R>>;
  /**
   * readVia (optional) reads the value v at `via` and, from the same snapshot, each read of `then`
   * on the key `read.key + v` (there `key` is a prefix): an index entry and what it points to
   * together, in one round trip on Redis. null when `via` is absent. All keys, the ones built from
   * v included, must share one hash tag (see above): put the tag in each prefix. Callers use
   * `readThrough`, which checks that (a backend may rely on it) and makes two reads for a backend
   * without readVia.
   */
  readVia?<const R extends readonly ReadOp[]>(via: string, then: R): Promise<ReadThrough<R> | null>;

  /** incr adds 1 to a counter and returns the new value; the first increment starts its TTL (a fixed window). */
  incr(key: string, ttlMs: number): Promise<number>;

  /**
   * atomic applies all writes or none. When a key in `ifAbsent` exists, nothing is written and it
   * returns false. All keys must share one hash tag (see above).
   */
  atomic(ops: WriteOp[], ifAbsent?: string[]): Promise<boolean>;

  /** publish sends a message to every subscriber of channel on every node (including this one). */
  publish(channel: string, message: string): Promise<void>;
  /** subscribe calls handler for each message on channel; the returned function unsubscribes. */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;

  /** ping fails when the backend cannot answer (used by /readyz). */
  ping(): Promise<void>;
  /** close releases connections and files. */
  close(): Promise<void>;
  /** kind names the backend for logs and the status page. */
  readonly kind: string;
}

export type WriteOp =
  | { op: 'set'; key: string; value: string; ttlMs?: number }
  | { op: 'del'; key: string }
  | { op: 'sadd'; key: string; member: string }
  | { op: 'srem'; key: string; member: string };

/** ReadOp is one read of `readMany`: a plain value (get) or all members of a set (smembers). */
export type ReadOp = { readonly op: 'get'; readonly key: string } | { readonly op: 'smembers'; readonly key: string };

/** ReadResults is what `readMany` answers for each ReadOp, in order. */
export type ReadResults<R extends readonly ReadOp[]> = { -readonly [I in keyof R]: R[I] extends { op: 'get' } ? string | null : string[] };

/** ReadThrough is what `readVia` answers: the value at `via`, and each read made with it. */
export interface ReadThrough<R extends readonly ReadOp[]> {
  readonly value: string;
  readonly results: ReadResults<R>;
}

/**
 * readAll answers reads with `readMany` when the backend has it, else with one call per read, all
 * issued at once (on Redis they go out back to back: one round trip).
 */
export function readAll<const R extends readonly ReadOp[]>(store: Store, reads: R): Promise<ReadResults<R>> {
  if (store.readMany !== undefined) return store.readMany(reads);
  return Promise.all(reads.map((r) => (r.op === 'get' ? store.get(r.key) : store.smembers(r.key)))) as Promise<ReadResults<R>>;
}

/** StoreUnavailableError is what every backend throws when it cannot answer in time; callers fail fast on it. */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** StoreConfig is the `store:` section of the config, already validated. */
export type StoreConfig =
  | { readonly type: 'embedded'; readonly path: string }
  | {
      readonly type: 'redis';
      /** redis://[:password@]host:port/db for a standalone server. */
      readonly url?: string;
      /** host:port seeds of a Redis Cluster. */
      readonly cluster?: readonly string[];
      /** Sentinel: the master group name and host:port of the sentinels. */
      readonly sentinel?: { readonly name: string; readonly hosts: readonly string[]; readonly db?: number };
      /** Prefix of every key and channel, so several deployments can share one Redis. */
      readonly keyPrefix: string;
      /** A command that takes longer fails with StoreUnavailableError. */
      readonly commandTimeoutMs: number;
    };

/**
 * readThrough reads an index entry and what it points to (see Store.readVia): in one call when the
 * backend can, else the entry first and then the reads it names, all at once.
 */
export async function readThrough<const R extends readonly ReadOp[]>(store: Store, via: string, then: R): Promise<ReadThrough<R> | null> {
  assertViaTags(via, then);
  if (store.readVia !== undefined) return store.readVia(via, then);
  const value = await store.get(via);
  if (value === null) return null;
  return { value, results: await readAll(store, then.map((r) => ({ op: r.op, key: r.key + value })) as unknown as R) };
}

/** hashTag is the part of a key Redis Cluster hashes: the first non-empty {…}, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** assertViaTags refuses a readThrough whose prefixes do not carry via's hash tag (a caller's bug, on every backend alike). */
function assertViaTags(via: string, then: readonly ReadOp[]): void {
  const tag = hashTag(via);
  for (const r of then) {
    const open = r.key.indexOf('{');
    if (open < 0 || r.key.indexOf('}', open + 1) < 0 || hashTag(r.key) !== tag || tag === via) {
      throw new Error(`readVia: "${r.key.slice(0, 100)}" does not carry the hash tag of "${via.slice(0, 100)}"`);
    }
  }
}
