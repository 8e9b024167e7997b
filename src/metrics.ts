/**
 * metrics: Prometheus counters and gauges on a private registry, served at /metrics.
 */
import { AggregatorRegistry, Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Store } from './sessions/store.js';

/**
 * Tally counts a counter's increments on the data plane's hot path in plain numbers, one row per
 * label set, and hands them to the prom-client counter whenever that is read (a scrape, the admin
 * API, the primary summing its workers). prom-client's own inc hashes and checks the label set on
 * every call, which cost a tunnel or a request about 2 µs. A label set is named by its values in
 * the counter's label order, joined by SEP; the labels object is made from that name once, the
 * first time it is seen. Label sets are bounded by the callers (actions, statuses, the error
 * catalogue's codes); past MAX_ROWS a set goes to the counter directly.
 */
export class Tally<L extends string> {
  static readonly MAX_ROWS = 4096;
  /** SEP joins label values into a row's name (a control character: no label value holds one). */
  static readonly SEP = '\u001f';
  readonly #rows = new Map<string, { readonly labels: Partial<Record<L, string>>; n: number }>();

  constructor(
    private readonly labelNames: readonly L[],
    private readonly counter: () => Counter<L>,
  ) {}

  /** add counts one for the label set named `key` (its values joined by SEP, in label order). */
  add(key: string): void {
    const row = this.#rows.get(key);
    if (row !== undefined) {
      row.n++;
      return;
    }
    const values = key.split(Tally.SEP);
    const labels: Partial<Record<L, string>> = {};
    this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
    if (this.#rows.size < Tally.MAX_ROWS) this.#rows.set(key, { labels, n: 1 });
    else this.counter().inc(labels);
  }

  /** flush hands what was counted since the last read to the counter (its collect hook). */
  flush(): void {
    const c = this.counter();
    for (const row of this.#rows.values()) {
      if (row.n === 0) continue;
      c.inc(row.labels, row.n);
      row.n = 0;
    }
  }
}

/** Level is a gauge's value kept as a plain number on the hot path; the gauge reads it when it is read. */
export class Level {
  value = 0;
  inc(): void {
    this.value++;
  }
  dec(): void {
    this.value--;
  }
}

/** Metrics is the set of instruments the proxy and control plane update. */
export class Metrics {
  readonly registry = new Registry();
  /** Transactions are counted through `requestTally` (or directly, for what is not the hot path). */
  readonly requestTally: Tally<'action' | 'status' | 'protocol'> = new Tally(['action', 'status', 'protocol'], () => this.requests);
  readonly requests: Counter<'action' | 'status' | 'protocol'> = new Counter({
    name: 'tollgate_requests_total',
    help: 'Transactions by action and status.',
    labelNames: ['action', 'status', 'protocol'] as const,
    registers: [this.registry],
    collect: () => this.requestTally.flush(),
  });
  readonly blockedTally: Tally<'reason'> = new Tally(['reason'], () => this.blocked);
  /** Blocked transactions by stable reason code (bounded: the codes are the error catalogue's). */
  readonly blocked: Counter<'reason'> = new Counter({
    name: 'tollgate_blocked_total',
    help: 'Blocked transactions by reason code.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
    collect: () => this.blockedTally.flush(),
  });
  readonly activeConnections = new Level();
  readonly activeTunnels = new Level();
  readonly upstreamErrors = new Counter({
    name: 'tollgate_upstream_errors_total',
    help: 'Upstream failures by stable code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  /** Handshakes an inspected client broke off over our certificate: users who have not installed the CA. */
  readonly inspectionClientRejected = new Counter({
    name: 'tollgate_inspection_client_rejected_total',
    help: 'Inspected TLS handshakes the client refused (our CA is not installed there).',
    registers: [this.registry],
  });
  /** Inspected tunnels closed before any request could be decrypted, by stable reason. */
  readonly inspectionClosed = new Counter({
    name: 'tollgate_inspection_closed_total',
    help: 'Inspected tunnels closed before a request, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** Transparent TLS connections closed before a destination was known, by stable reason. */
  readonly transparentClosed = new Counter({
    name: 'tollgate_transparent_closed_total',
    help: 'Transparent TLS connections closed before a destination was known (no SNI, not TLS, ...), by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly storeLatency = new Histogram({
    name: 'tollgate_store_seconds',
    help: 'Store call latency by operation.',
    labelNames: ['op', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly scimOperations = new Counter({
    name: 'tollgate_scim_operations_total',
    help: 'SCIM operations by operation, resource and status.',
    labelNames: ['op', 'resource', 'status'] as const,
    registers: [this.registry],
  });
  readonly logins = new Counter({
    name: 'tollgate_logins_total',
    help: 'SAML sign-ins by outcome: ok, or the refusal code.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  /** With several workers the lowest version is shown: a worker still on the old config is not hidden. */
  readonly configVersion = new Gauge({ name: 'tollgate_config_version', help: 'Version of the active config.', registers: [this.registry], aggregator: 'min' });
  readonly activations = new Counter({
    name: 'tollgate_activations_total',
    help: 'Config activations by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor(cacheStats?: () => { hits: number; misses: number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_process_' });
    const levels: readonly [string, string, Level][] = [
      ['tollgate_active_connections', 'Open client connections on the proxy listeners (explicit and transparent).', this.activeConnections],
      ['tollgate_active_tunnels', 'Open CONNECT tunnels and WebSockets.', this.activeTunnels],
    ];
    for (const [name, help, level] of levels) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(level.value);
        },
      });
    }
    new Gauge({
      name: 'tollgate_lru_hit_ratio',
      help: 'Share of session-store reads answered by the in-process LRU.',
      registers: [this.registry],
      aggregator: 'average',
      collect() {
        const s = cacheStats?.() ?? { hits: 0, misses: 0 };
        const total = s.hits + s.misses;
        this.set(total === 0 ? 0 : s.hits / total);
      },
    });
  }

  /** serveToPrimary answers the primary's requests for this worker's metrics, so /metrics can sum the workers. */
  serveToPrimary(): void {
    new AggregatorRegistry(); // installs prom-client's worker-side listener
    AggregatorRegistry.setRegistries([this.registry]);
  }
}

const TIMED = new Set(['get', 'set', 'createIfAbsent', 'consume', 'del', 'sadd', 'srem', 'smembers', 'scard', 'sismember', 'incr', 'atomic', 'publish', 'ping']);

/** timedStore wraps a store so every call is observed in the store latency histogram. */
export function timedStore<S extends Store>(store: S, hist: Histogram<'op' | 'outcome'>): S {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      let fn = cache.get(prop);
      if (fn === undefined) {
        const bound = (value as (...a: unknown[]) => unknown).bind(target);
        fn = !TIMED.has(String(prop))
          ? bound
          : async (...args: unknown[]) => {
              const end = hist.startTimer({ op: String(prop) });
              try {
                const r = await bound(...args);
                end({ outcome: 'ok' });
                return r;
              } catch (err) {
                end({ outcome: 'error' });
                throw err;
              }
            };
        cache.set(prop, fn);
      }
      return fn;
    },
  });
}
