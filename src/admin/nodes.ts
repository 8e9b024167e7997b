/**
 * nodes: every node's heartbeat in the store, for /api/nodes and the activation answer.
 *
 *   every HEARTBEAT_MS: node:<name> = {name, addresses, version, config version, started, counts} (TTL 3 beats)
 *                       nodes (set) += name;  the activation report is renewed; a missed activation is followed
 *
 * A node that stops beating drops out of the list once its entry expires (the set is cleaned on read).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Activator } from '../activation.js';
import type { Metrics } from '../metrics.js';
import type { RuntimeRef } from '../runtime.js';
import type { Store } from '../sessions/store.js';

/** HEARTBEAT_MS is how often a node writes its heartbeat. */
export const HEARTBEAT_MS = 2_000;

/** NodeView is one node as /api/nodes lists it. */
export interface NodeView {
  readonly name: string;
  readonly proxy: string;
  readonly control: string;
  /** version is Tollgate's own version (package.json). */
  readonly version: string;
  readonly configVersion: number;
  /** configFailed is the newer config version the node could not build, with why; null when up to date. */
  readonly configFailed: { readonly version: number; readonly errors: readonly string[] } | null;
  readonly startedAt: string;
  readonly seenAt: string;
  readonly requests: number;
  readonly errors: number;
  /** rps is requests per second over the last heartbeat interval. */
  readonly rps: number;
  /** lastHour counts what happened on this node in the last hour (since start, when younger). */
  readonly lastHour: Counts;
}

/** Counts are a node's counters from /metrics: transactions, 5xx, blocked (and by reason), sign-ins by outcome, SCIM operations. */
export interface Counts {
  readonly requests: number;
  readonly errors: number;
  readonly blocked: number;
  /** blockedBy counts blocked transactions by their stable reason code (the dashboard's top reasons). */
  readonly blockedBy: Readonly<Record<string, number>>;
  readonly signIns: Readonly<Record<string, number>>;
  readonly scim: number;
}

type Tally = Readonly<Record<string, number>>;

/** plus adds two tallies key by key. */
function plus(a: Tally, b: Tally): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** minus is what `now` adds to `then`, key by key; keys that did not move are left out. */
function minus(now: Tally, then: Tally): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) {
    const d = v - (then[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

const HOUR_MS = 3600_000;

/** add sums two nodes' counts (the dashboard's totals over nodes). */
export function add(a: Counts, b: Counts): Counts {
  return {
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    blocked: a.blocked + b.blocked,
    blockedBy: plus(a.blockedBy ?? {}, b.blockedBy ?? {}),
    signIns: plus(a.signIns, b.signIns),
    scim: a.scim + b.scim,
  };
}

/** ZERO_COUNTS is nothing counted yet. */
export const ZERO_COUNTS: Counts = { requests: 0, errors: 0, blocked: 0, blockedBy: {}, signIns: {}, scim: 0 };

/** since is what `now` adds to `then`. */
export function since(now: Counts, then: Counts): Counts {
  return {
    requests: now.requests - then.requests,
    errors: now.errors - then.errors,
    blocked: now.blocked - then.blocked,
    blockedBy: minus(now.blockedBy, then.blockedBy),
    signIns: minus(now.signIns, then.signIns),
    scim: now.scim - then.scim,
  };
}

const PACKAGE_VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    try {
      // Compiled: dist/src/admin/ is one level deeper than src/admin/.
      return (JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  }
})();

const key = (name: string) => `node:${name}`;

/** NODES_KEY is the set of the names of nodes that heartbeat. */
export const NODES_KEY = 'nodes';

/** counts reads this node's counters from the /metrics registry. */
async function counts(metrics: Metrics): Promise<Counts> {
  const [req, logins, scim, refused] = await Promise.all([metrics.requests.get(), metrics.logins.get(), metrics.scimOperations.get(), metrics.blocked.get()]);
  let requests = 0;
  let errors = 0;
  let blocked = 0;
  for (const v of req.values) {
    requests += v.value;
    if (String(v.labels.status ?? '').startsWith('5')) errors += v.value;
    if (v.labels.action === 'blocked') blocked += v.value;
  }
  const signIns: Record<string, number> = {};
  for (const v of logins.values) signIns[String(v.labels.outcome)] = (signIns[String(v.labels.outcome)] ?? 0) + v.value;
  const blockedBy: Record<string, number> = {};
  for (const v of refused.values) blockedBy[String(v.labels.reason)] = (blockedBy[String(v.labels.reason)] ?? 0) + v.value;
  return { requests, errors, blocked, blockedBy, signIns, scim: scim.values.reduce((a, v) => a + v.value, 0) };
}

/** Heartbeat writes this node's heartbeat until stopped. */
export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date().toISOString();
  /** samples are this node's counters at each beat of the last hour, oldest first. */
  private readonly samples: { at: number; counts: Counts }[] = [];

  constructor(
    private readonly deps: { store: Store; runtime: RuntimeRef; metrics: Metrics; activator: Activator; log: Logger; proxy: string; control: string },
  ) {}

  /** beat writes one heartbeat, renews the activation report, and follows an activation this node missed. */
  async beat(): Promise<void> {
    const { store, runtime, activator } = this.deps;
    const rt = runtime.current;
    const now = Date.now();
    const c = await counts(this.deps.metrics);
    const prev = this.samples[this.samples.length - 1];
    // The newest sample an hour old or more is the baseline; a younger node counts from its start.
    while (this.samples.length > 1 && this.samples[1]!.at <= now - HOUR_MS) this.samples.shift();
    const base = this.samples[0] !== undefined && this.samples[0].at <= now - HOUR_MS ? this.samples[0].counts : ZERO_COUNTS;
    this.samples.push({ at: now, counts: c });
    const view: NodeView = {
      name: rt.nodeName,
      proxy: this.deps.proxy,
      control: this.deps.control,
      version: PACKAGE_VERSION,
      configVersion: rt.version,
      configFailed: activator.failed,
      startedAt: this.startedAt,
      seenAt: new Date(now).toISOString(),
      requests: c.requests,
      errors: c.errors,
      rps: prev === undefined || now <= prev.at ? 0 : Math.round(((c.requests - prev.counts.requests) * 1000 * 10) / (now - prev.at)) / 10,
      lastHour: since(c, base),
    };
    await store.set(key(rt.nodeName), JSON.stringify(view), HEARTBEAT_MS * 3);
    await store.sadd(NODES_KEY, rt.nodeName);
    await activator.report();
    // Not awaited: follow runs after any activation in progress, which may itself be waiting for this beat.
    const active = await activator.versions.activeVersion();
    if (active > rt.version) void activator.follow(active);
  }

  start(): void {
    const tick = () => {
      this.beat().then(
        () => {
          if (this.timer !== null) this.timer = setTimeout(tick, HEARTBEAT_MS).unref();
        },
        (err: Error) => {
          this.deps.log.warn({ err: err.message }, 'heartbeat failed');
          if (this.timer !== null) this.timer = setTimeout(tick, HEARTBEAT_MS).unref();
        },
      );
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** stop ends the beats and removes this node from the list at once. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const name = this.deps.runtime.current.nodeName;
    await Promise.allSettled([this.deps.store.del(key(name)), this.deps.store.srem(NODES_KEY, name)]);
  }
}

/** listNodes reads every live node's heartbeat; names whose heartbeat expired are dropped from the set. */
export async function listNodes(store: Store): Promise<NodeView[]> {
  const names = await store.smembers(NODES_KEY);
  const views = await Promise.all(names.map(async (n) => ({ n, raw: await store.get(key(n)) })));
  const out: NodeView[] = [];
  for (const { n, raw } of views) {
    if (raw === null) await store.srem(NODES_KEY, n);
    else out.push(JSON.parse(raw) as NodeView);
  }
  return out;
}
