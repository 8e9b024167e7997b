/**
 * dnscache: upstream name resolution with the answers' own TTLs, for dial.ts's `resolve` option.
 *
 *   dial -> static hosts | .invalid | localhost -> DnsCache (fresh answer? else ask DNS, one query
 *   per name at a time) -> every address -> dial's self check (unchanged)
 *
 * getaddrinfo (dns.lookup) tells no TTL and runs on libuv's small thread pool, so every CONNECT to
 * a name paid a pool round trip, and a burst of them queued behind each other. Here a name is
 * asked of DNS (c-ares, A and AAAA together) and the answer is kept for the smallest TTL among its
 * records, at most maxTtlMs, and never longer than the records allow (a TTL of 0 is not cached).
 * Names DNS does not know fall back to getaddrinfo, so /etc/hosts and other NSS sources still
 * answer; those answers carry no TTL and are kept for fallbackTtlMs. Failures are not cached.
 * The cache is bounded (least recently used names go first).
 */
import dns from 'node:dns';
import type { Resolve } from './dial.js';

/** DnsCacheOptions are the cache's bounds; `resolver` and `now` let tests use their own DNS and clock. */
export interface DnsCacheOptions {
  readonly maxEntries?: number;
  readonly maxTtlMs?: number;
  readonly fallbackTtlMs?: number;
  readonly resolver?: Pick<dns.Resolver, 'resolve4' | 'resolve6'>;
  readonly lookup?: (hostname: string, cb: (err: NodeJS.ErrnoException | null, addresses: readonly string[]) => void) => void;
  readonly now?: () => number;
}

interface Entry {
  readonly addresses: readonly string[];
  readonly expires: number;
}

/** TtlRecord is one address record with its TTL in seconds. */
interface TtlRecord {
  readonly address: string;
  readonly ttl: number;
}

type Done = (err: NodeJS.ErrnoException | null, addresses: readonly string[]) => void;

/** NOT_IN_DNS are the answers after which getaddrinfo is asked instead (hosts file, mDNS, ...). */
const NOT_IN_DNS = new Set(['ENOTFOUND', 'ENODATA', 'ECONNREFUSED', 'ETIMEOUT', 'ESERVFAIL', 'EREFUSED']);

const systemLookup = (hostname: string, cb: Done): void =>
  dns.lookup(hostname, { all: true }, (err, addresses) => (err ? cb(err, []) : cb(null, addresses.map((a) => a.address))));

/** DnsCache resolves names with their TTLs honoured; `resolve` is what dial takes. */
export class DnsCache {
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Done[]>();
  readonly #max: number;
  readonly #maxTtl: number;
  readonly #fallbackTtl: number;
  readonly #resolver: Pick<dns.Resolver, 'resolve4' | 'resolve6'>;
  readonly #lookup: (hostname: string, cb: Done) => void;
  readonly #now: () => number;

  constructor(opts: DnsCacheOptions = {}) {
    this.#max = opts.maxEntries ?? 10_000;
    this.#maxTtl = opts.maxTtlMs ?? 300_000;
    this.#fallbackTtl = opts.fallbackTtlMs ?? 5_000;
    this.#resolver = opts.resolver ?? new dns.Resolver({ timeout: 2000, tries: 2 });
    this.#lookup = opts.lookup ?? systemLookup;
    this.#now = opts.now ?? Date.now;
  }

  /** resolve answers every address of a name, from the cache while its TTL lasts. */
  readonly resolve: Resolve = (hostname, cb) => {
    const name = hostname.toLowerCase();
    const hit = this.#entries.get(name);
    if (hit !== undefined) {
      if (hit.expires > this.#now()) {
        // Least recently used goes first: a hit moves to the back.
        this.#entries.delete(name);
        this.#entries.set(name, hit);
        return cb(null, hit.addresses);
      }
      this.#entries.delete(name);
    }
    const waiting = this.#pending.get(name);
    if (waiting !== undefined) return void waiting.push(cb);
    this.#pending.set(name, [cb]);
    this.#ask(name, (err, addresses, ttlMs) => {
      const cbs = this.#pending.get(name) ?? [];
      this.#pending.delete(name);
      if (err === null && ttlMs > 0) this.#store(name, addresses, ttlMs);
      for (const c of cbs) c(err, addresses);
    });
  };

  /** size is how many names are cached (fresh or not yet evicted). */
  get size(): number {
    return this.#entries.size;
  }

  #store(name: string, addresses: readonly string[], ttlMs: number): void {
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(name, { addresses, expires: this.#now() + Math.min(ttlMs, this.#maxTtl) });
  }

  /** #ask queries A and AAAA together; the TTL is the smallest of the records returned. */
  #ask(name: string, done: (err: NodeJS.ErrnoException | null, addresses: readonly string[], ttlMs: number) => void): void {
    let left = 2;
    const v4: TtlRecord[] = [];
    const v6: TtlRecord[] = [];
    let firstErr: NodeJS.ErrnoException | null = null;
    const settle = (into: TtlRecord[], err: NodeJS.ErrnoException | null, records: readonly TtlRecord[]) => {
      if (err !== null) firstErr ??= err;
      else into.push(...records);
      if (--left > 0) return;
      // IPv4 first, as getaddrinfo orders them on most hosts.
      const found = [...v4, ...v6];
      if (found.length > 0) return done(null, found.map((r) => r.address), Math.min(...found.map((r) => r.ttl)) * 1000);
      if (firstErr !== null && !NOT_IN_DNS.has(firstErr.code ?? '')) return done(firstErr, [], 0);
      this.#lookup(name, (lerr, addresses) => done(lerr, addresses, lerr === null ? this.#fallbackTtl : 0));
    };
    this.#resolver.resolve4(name, { ttl: true }, (err, records) => settle(v4, err, records ?? []));
    this.#resolver.resolve6(name, { ttl: true }, (err, records) => settle(v6, err, records ?? []));
  }
}
