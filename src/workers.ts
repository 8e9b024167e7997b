/**
 * workers: one node as several processes that share its listeners (node:cluster), each a full data
 * plane and control app.
 *
 *   primary: supervises (fork, restart with backoff), takes signals, relays between workers
 *     ├─ worker 1 ─ startTollgate (proxy + control listeners, shared by the cluster module)
 *     └─ worker N ─ startTollgate
 *
 * State is shared through the store, as between nodes. On Redis the workers are simply more
 * nodes. On the embedded store they share the one SQLite file, and the invalidations the LRU tier
 * needs (logout, revoke, deactivate, reauth) travel worker → primary → every other worker.
 *
 * Messages between primary and workers are objects with a `tollgate` kind:
 *   bus        worker → primary → other workers   an embedded-store publish
 *   activate   primary → one worker               activate the config file (SIGHUP on the primary)
 *   activated  worker → primary                   this worker activated version n; the others follow it
 *   follow     primary → other workers            build version n from the store (config versions live there)
 *   metrics    worker → primary → worker          every worker's metrics, aggregated (prom-client)
 *   ready      worker → primary → worker          whether every worker is up and serving
 *   up         worker → primary                   listeners are open
 *   shutdown   primary → worker                   drain and exit (SIGTERM / SIGINT on the primary)
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { relayEmbeddedBus } from './sessions/embedded.js';

/** WORKER_ENV carries a worker's id and the primary's lab IdP to the worker. */
const WORKER_ENV = 'TOLLGATE_WORKER';

/** RESTART_BACKOFF_MS is the first restart delay; it doubles per crash in a row, up to RESTART_MAX_MS. */
const RESTART_BACKOFF_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long resets the backoff: it crashed, but not in a loop. */
const STABLE_MS = 30_000;
/** REPLY_TIMEOUT_MS bounds every question a worker asks the primary. */
const REPLY_TIMEOUT_MS = 5000;

/** LabIdpRef is a lab IdP already running in the primary, as a worker needs to know it. */
export interface LabIdpRef {
  readonly ssoUrl: string;
  readonly certPath: string;
  readonly entityId: string;
}

/** WorkerLink is what a worker's Tollgate is given to act as one node with its siblings. */
export interface WorkerLink {
  readonly id: number;
  readonly labIdp: LabIdpRef | undefined;
  /** metrics returns every worker's metrics, aggregated (counters summed), as Prometheus text. */
  metrics(): Promise<string>;
  /** notReady answers null when every worker is serving, or why not. */
  notReady(): Promise<string | null>;
  /** activated tells the primary this worker activated config `version`, so the others follow. */
  activated(version: number): void;
}

/** workerCount resolves the `workers` setting. */
export function workerCount(setting: Config['workers']): number {
  return setting === 'auto' ? Math.max(1, availableParallelism()) : setting;
}

type Msg = { tollgate: string; [k: string]: unknown };

function isMsg(m: unknown): m is Msg {
  return typeof m === 'object' && m !== null && typeof (m as Msg).tollgate === 'string';
}

/** PrimaryOptions is what the supervisor needs. */
export interface PrimaryOptions {
  readonly count: number;
  readonly log: Logger;
  readonly labIdp: LabIdpRef | undefined;
}

/**
 * runPrimary forks and supervises the workers until SIGTERM or SIGINT, then drains them; resolves
 * with the exit code.
 */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { count, log } = opts;
  const aggregator = new AggregatorRegistry();
  const slots = new Map<number, { worker: Worker; startedAt: number; up: boolean }>();
  const crashes = new Map<number, number>();
  let stopping = false;
  // Workers accept from the shared listening socket themselves. node:cluster's round robin on Linux
  // has the primary accept every connection and pass it over IPC, which cost more CPU per new
  // connection than a worker spends serving it (bench:scale).
  cluster.schedulingPolicy = cluster.SCHED_NONE;

  const fork = (id: number): void => {
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify({ id, labIdp: opts.labIdp }) });
    slots.set(id, { worker, startedAt: Date.now(), up: false });
    worker.on('message', (m: unknown) => onMessage(id, worker, m));
    worker.on('exit', (code, signal) => {
      const slot = slots.get(id);
      if (slot?.worker !== worker) return;
      slots.delete(id);
      if (stopping) return;
      const lived = Date.now() - slot.startedAt;
      const n = lived > STABLE_MS ? 1 : (crashes.get(id) ?? 0) + 1;
      crashes.set(id, n);
      const delay = Math.min(RESTART_MAX_MS, RESTART_BACKOFF_MS * 2 ** (n - 1));
      log.error({ worker: id, pid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delay }, 'worker exited; restarting it');
      setTimeout(() => {
        if (!stopping) fork(id);
      }, delay).unref();
    });
  };

  const others = (id: number) => [...slots.entries()].filter(([k]) => k !== id).map(([, s]) => s.worker);
  const send = (w: Worker, m: Msg) => {
    if (w.isConnected()) w.send(m, (err: Error | null) => err && log.warn({ err: err.message }, 'message to a worker was lost'));
  };

  function onMessage(id: number, worker: Worker, m: unknown): void {
    if (!isMsg(m)) return; // prom-client's own messages, answered by its aggregator
    switch (m.tollgate) {
      case 'up': {
        const slot = slots.get(id);
        if (slot) slot.up = true;
        log.info({ worker: id, pid: worker.process.pid }, 'worker serving');
        // The first worker starts alone, so it alone records the starting config version; the rest find it.
        if (id === 1 && !started) {
          started = true;
          for (let n = 2; n <= count; n++) fork(n);
        }
        return;
      }
      case 'bus':
        for (const w of others(id)) send(w, m);
        return;
      case 'activated':
        log.info({ worker: id, version: m.version }, 'a worker activated a new config; the others follow');
        for (const w of others(id)) send(w, { tollgate: 'follow', version: m.version });
        return;
      case 'metrics':
        aggregator.clusterMetrics().then(
          (text) => send(worker, { tollgate: 'reply', ref: m.ref, text }),
          (err: Error) => send(worker, { tollgate: 'reply', ref: m.ref, error: err.message }),
        );
        return;
      case 'ready': {
        const up = [...slots.values()].filter((s) => s.up).length;
        send(worker, { tollgate: 'reply', ref: m.ref, text: up === count ? null : `${up} of ${count} workers are serving` });
        return;
      }
    }
  }

  let started = false;
  fork(1);
  log.info({ workers: count, pid: process.pid }, 'primary supervising workers');
  process.on('SIGHUP', () => {
    // One worker activates the file; the version it claims then reaches the others ('activated').
    const first = [...slots.entries()].filter(([, s]) => s.up).sort(([a], [b]) => a - b)[0];
    log.info({ signal: 'SIGHUP', worker: first?.[0] }, 'activating the config file');
    if (first !== undefined) send(first[1].worker, { tollgate: 'activate' });
  });
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, workers: slots.size }, 'stopping workers');
      if (slots.size === 0) return resolve(0);
      for (const s of slots.values()) {
        send(s.worker, { tollgate: 'shutdown' });
        s.worker.once('exit', () => {
          if ([...slots.values()].every((x) => x.worker.isDead())) resolve(0);
        });
      }
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** WorkerHooks are what the worker side calls back into its running Tollgate. */
export interface WorkerHooks {
  activate(): Promise<{ ok: boolean; version?: number }>;
  /** follow builds config version n, which a sibling activated, from the store. */
  follow(version: number): Promise<void>;
  shutdown(): Promise<void>;
}

/** isWorker tells whether this process is a Tollgate worker forked by runPrimary. */
export function isWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}

/** WorkerSide is a worker's link plus `attach`, which the CLI calls once its Tollgate runs. */
export type WorkerSide = WorkerLink & { attach(hooks: WorkerHooks, log: Logger): void };

/**
 * workerLink builds this worker's link to the primary and bridges the embedded store's bus over
 * IPC. Call `attach` once the worker's Tollgate is running.
 */
export function workerLink(): WorkerSide {
  const env = JSON.parse(process.env[WORKER_ENV] ?? '{}') as { id?: number; labIdp?: LabIdpRef };
  const id = env.id ?? 0;
  const waiting = new Map<number, { resolve: (v: string | null) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let ref = 0;
  const ask = (kind: string): Promise<string | null> =>
    new Promise((resolve, reject) => {
      const n = ++ref;
      const timer = setTimeout(() => {
        waiting.delete(n);
        reject(new Error(`the primary did not answer "${kind}" in ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      waiting.set(n, { resolve, reject, timer });
      process.send?.({ tollgate: kind, ref: n });
    });
  // Embedded-store publishes cross to the sibling workers through the primary.
  relayEmbeddedBus((file, channel, message) => process.send?.({ tollgate: 'bus', file, channel, message }));
  let hooks: WorkerHooks | null = null;
  let log: Logger | null = null;
  process.on('message', (m: unknown) => {
    if (!isMsg(m)) return;
    switch (m.tollgate) {
      case 'reply': {
        const w = waiting.get(m.ref as number);
        if (!w) return;
        waiting.delete(m.ref as number);
        clearTimeout(w.timer);
        if (typeof m.error === 'string') w.reject(new Error(m.error));
        else w.resolve((m.text as string | null) ?? null);
        return;
      }
      case 'bus':
        relayEmbeddedBus.deliver(String(m.file), String(m.channel), String(m.message));
        return;
      case 'activate':
        void hooks?.activate().then((r) => {
          if (r.ok && r.version !== undefined) process.send?.({ tollgate: 'activated', version: r.version });
        });
        return;
      case 'follow':
        void hooks?.follow(Number(m.version));
        return;
      case 'shutdown':
        void hooks?.shutdown().finally(() => process.exit(0));
        return;
    }
  });
  return {
    id,
    labIdp: env.labIdp,
    metrics: async () => (await ask('metrics')) ?? '',
    notReady: () => ask('ready'),
    activated: (version) => void process.send?.({ tollgate: 'activated', version }),
    attach(h, l) {
      hooks = h;
      log = l;
      // The primary is gone (killed): nobody supervises or relays any more, so drain and exit.
      process.once('disconnect', () => {
        log?.warn({ worker: id }, 'primary gone; shutting down');
        void h.shutdown().finally(() => process.exit(0));
      });
      process.send?.({ tollgate: 'up' });
    },
  };
}
