/**
 * activation: "Save and Activate". One path for every way a config becomes active (SIGHUP, `tollgate
 * activate`, an API draft, a rollback), and the same on every node that shares a Redis store.
 *
 *   text -> parse -> (shared: the node's own local keys) -> validate -> IdP files -> claim version n
 *        -> build runtime n -> swap -> (file node, from the API: write the file)
 *        -> (shared) publish n -> every other node: read n -> build -> swap | keep the old, report why
 *
 * Where the active config lives:
 * - embedded store (one node): the config file is the source of truth; an API activation writes it.
 * - Redis (many nodes): the store holds the active version. A node starting reads it, keeping only
 *   its node-local keys (LOCAL_KEYS) from its own file, and refuses to start when its file
 *   disagrees on what must match (cloud, orgId, store type and key prefix).
 *
 * A failed activation swaps nothing and records nothing; every error comes back with its path.
 */
import type { Logger } from 'pino';
import { ConfigError, configApart, parseApart, validateApart } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Metrics } from './metrics.js';
import { buildRuntime, type Runtime, type RuntimeRef } from './runtime.js';
import { ACTIVATED_CHANNEL, ConfigVersions, sha256, type ActivationSource, type NodeReport } from './config/versions.js';
import type { Store } from './sessions/store.js';
import type { IdpRuntime } from './auth/idps.js';
import type { PacFiles } from './pac/files.js';
import type { Inspection } from './tls/inspection.js';
import { listNodes, type NodeView } from './admin/nodes.js';

/** LOCAL_KEYS are what each node keeps from its own file when the active config comes from the store. */
export const LOCAL_KEYS = ['nodeName', 'listeners', 'store', 'logging', 'admin', 'labIdp'] as const;

/** NodeOutcome is how one other node took an activation, as the activation answer lists it. */
export interface NodeOutcome {
  readonly node: string;
  readonly ok: boolean;
  readonly errors?: readonly string[];
}

/** ActivationResult is what an activation reports to the caller. */
export type ActivationResult =
  | { ok: true; version: number; warnings: string[]; nodes?: NodeOutcome[] }
  | { ok: false; errors: readonly string[] };

/** ActivationRequest names the text (the node's own file when absent), who asked, and how. */
export interface ActivationRequest {
  readonly text?: string;
  readonly who: string;
  readonly source: ActivationSource;
  readonly rolledBackFrom?: number;
}

/** Prepared is a validated config whose files are read: all that can fail, done before anything changes. */
export interface Prepared {
  readonly config: Config;
  readonly idps: ReadonlyMap<string, IdpRuntime>;
  readonly pac: PacFiles;
  readonly inspection: Inspection | null;
  readonly warnings: readonly string[];
}

/** ActivatorDeps is what activation needs from the composition root. */
export interface ActivatorDeps {
  /** store is the backend itself (no LRU): versions must be read fresh. */
  readonly store: Store;
  readonly shared: boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** readOwn reads this node's own config text (the file, or the inline or default document). */
  readonly readOwn: () => Promise<string>;
  /** prepare validates a config and reads its IdP files; it throws ConfigError with every problem. */
  readonly prepare: (config: Config) => Promise<Prepared>;
  /** writeOwn (file nodes started with a file) saves an activated text so a restart keeps it. */
  readonly writeOwn?: (text: string) => Promise<void>;
  readonly source: string;
}

/** REPORT_TTL_MS keeps a node's activation report while the node lives (its heartbeat renews it). */
export const REPORT_TTL_MS = 60_000;
/** WAIT_NODES_MS bounds how long an activation waits for the other nodes' reports. */
const WAIT_NODES_MS = 2_000;

/** mustMatch lists what a node's own config may not differ in from the shared one. */
export function mustMatch(own: Config, shared: Config): string[] {
  const out: string[] = [];
  if (own.cloud.toLowerCase() !== shared.cloud.toLowerCase()) out.push(`cloud: this node's file says "${own.cloud}", the active config "${shared.cloud}"`);
  if (own.orgId !== shared.orgId) out.push(`orgId: this node's file says "${own.orgId}", the active config "${shared.orgId}"`);
  if (own.store.type !== shared.store.type) out.push(`store.type: this node's file says "${own.store.type}", the active config "${shared.store.type}"`);
  else if (own.store.type === 'redis' && shared.store.type === 'redis' && own.store.keyPrefix !== shared.store.keyPrefix) {
    out.push(`store.keyPrefix: this node's file says "${own.store.keyPrefix}", the active config "${shared.store.keyPrefix}"`);
  }
  return out;
}

/** Activator owns the active version of one node. */
export class Activator {
  readonly versions: ConfigVersions;
  /** failed is the newest version this node was told of and could not build; null when it runs the latest. */
  failed: { version: number; errors: readonly string[] } | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private unsubscribe: (() => Promise<void>) | null = null;
  private ref: RuntimeRef | null = null;

  constructor(private readonly deps: ActivatorDeps) {
    this.versions = new ConfigVersions(deps.store);
  }

  /** attach hands over the runtime reference built from boot(); activations swap it from then on. */
  attach(ref: RuntimeRef): void {
    this.ref = ref;
  }

  private get runtime(): RuntimeRef {
    if (this.ref === null) throw new Error('activation before the first runtime was built');
    return this.ref;
  }

  /** configOf parses a text into this node's effective config: shared text plus its own local keys. */
  async configOf(text: string, source: string): Promise<Config> {
    const data = await parseApart(text, source);
    if (!this.deps.shared) return validateApart(data, source);
    const own = (await parseApart(await this.deps.readOwn(), this.deps.source)) as Record<string, unknown> | null;
    const merged: Record<string, unknown> = { ...(data as Record<string, unknown> | null) };
    for (const k of LOCAL_KEYS) {
      if (own?.[k] !== undefined) merged[k] = own[k];
      else delete merged[k];
    }
    return validateApart(merged, source);
  }

  /**
   * boot decides the first config: on a shared store the active version there (after the must-match
   * check), else this node's own text, recorded as a version when the store does not have it yet.
   */
  async boot(): Promise<{ prepared: Prepared; version: number }> {
    const ownText = await this.deps.readOwn();
    const own = await configApart(ownText, this.deps.source);
    const active = await this.versions.active();
    if (this.deps.shared && active !== null) {
      const source = `active config v${active.version} (from the store)`;
      const shared = await configApart(active.text, source);
      const clash = mustMatch(own, shared);
      if (clash.length > 0) throw new ConfigError(this.deps.source, clash);
      return { prepared: await this.deps.prepare(await this.configOf(active.text, source)), version: active.version };
    }
    const prepared = await this.deps.prepare(own);
    if (active !== null && active.sha256 === sha256(ownText)) return { prepared, version: active.version };
    return { prepared, version: (await this.versions.claim(ownText, 'start', 'start')).version };
  }

  /** listen follows other nodes' activations (shared stores only). */
  async listen(): Promise<void> {
    if (!this.deps.shared) return;
    this.unsubscribe = await this.deps.store.subscribe(ACTIVATED_CHANNEL, (msg) => void this.follow(Number(msg)));
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
  }

  /** activate makes a text (the node's own file when none is given) the active config everywhere. */
  activate(req: ActivationRequest): Promise<ActivationResult> {
    return this.serial(() => this.run(req));
  }

  /**
   * follow builds a version another node activated, when it is newer than this node's. A failure
   * keeps the old runtime and is reported (readyz, /api/nodes, the activating node's answer).
   */
  follow(version: number): Promise<void> {
    return this.serial(async () => {
      const rt = this.runtime.current;
      if (!(version > rt.version) || this.failed?.version === version) return;
      const rec = await this.versions.get(version);
      if (rec === null) return;
      try {
        const p = await this.deps.prepare(await this.configOf(rec.text, `config v${version}`));
        this.swap(buildRuntime(p.config, version, p.idps, p.pac, p.inspection), p.warnings, `followed config v${version} activated by ${rec.activatedBy}`);
        this.failed = null;
      } catch (err) {
        const errors = errorsOf(err);
        this.failed = { version, errors };
        this.deps.metrics.activations.inc({ outcome: 'failed' });
        this.deps.log.error({ version, errors }, 'cannot build the config another node activated; the previous config keeps running');
      }
      await this.report();
      await this.beatNow();
    }).catch((err: Error) => this.deps.log.warn({ err: err.message, version }, 'following an activation failed'));
  }

  /** beat, when set, writes this node's heartbeat now (so the list shows its own state as it is). */
  beat: (() => Promise<void>) | null = null;

  /** nodes lists the nodes that heartbeat into the store, this one freshly. */
  async nodes(): Promise<NodeView[]> {
    await this.beat?.();
    return listNodes(this.deps.store);
  }

  /** report writes this node's activation state for the others (renewed by the heartbeat), and its heartbeat now. */
  async report(): Promise<void> {
    const rt = this.runtime.current;
    await this.versions.report({ node: rt.nodeName, version: rt.version, failed: this.failed }, REPORT_TTL_MS);
  }

  /** beatNow refreshes this node's heartbeat after a change; a failed beat is retried by the next tick. */
  private async beatNow(): Promise<void> {
    try {
      await this.beat?.();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {
      // The caller of fn hears its failure; the chain only orders runs.
    });
    return p;
  }

  private async run(req: ActivationRequest): Promise<ActivationResult> {
    let version: number;
    let warnings: string[];
    try {
      const text = req.text ?? (await this.deps.readOwn());
      const source = req.text === undefined ? this.deps.source : `config from ${req.source}`;
      const p = await this.deps.prepare(await this.configOf(text, source));
      warnings = [...p.warnings, ...restartWarnings(this.runtime.current.config, p.config)];
      const rec = await this.versions.claim(text, req.who, req.source, req.rolledBackFrom);
      version = rec.version;
      this.swap(buildRuntime(p.config, version, p.idps, p.pac, p.inspection), warnings, 'config activated', req.who);
      this.failed = null;
      if (req.text !== undefined && this.deps.writeOwn !== undefined && !this.deps.shared) await this.deps.writeOwn(text);
    } catch (err) {
      const errors = errorsOf(err);
      this.deps.metrics.activations.inc({ outcome: 'failed' });
      this.deps.log.error({ errors, source: err instanceof ConfigError ? err.source : undefined }, 'activation failed; the previous config keeps running');
      return { ok: false, errors };
    }
    await this.beatNow();
    if (!this.deps.shared) return { ok: true, version, warnings };
    await this.report();
    await this.versions.announce(version);
    return { ok: true, version, warnings, nodes: await this.outcomes(version) };
  }

  private swap(rt: Runtime, warnings: readonly string[], msg: string, who?: string): void {
    this.runtime.swap(rt);
    this.deps.metrics.activations.inc({ outcome: 'ok' });
    this.deps.metrics.configVersion.set(rt.version);
    this.deps.log.info({ version: rt.version, warnings, ...(who !== undefined ? { by: who } : {}) }, msg);
  }

  /** outcomes waits (boundedly) for every other live node to report on `version`. */
  private async outcomes(version: number): Promise<NodeOutcome[]> {
    const self = this.runtime.current.nodeName;
    const end = Date.now() + WAIT_NODES_MS;
    let reports: NodeReport[] = [];
    for (;;) {
      const names = (await listNodes(this.deps.store)).map((v) => v.name).filter((n) => n !== self);
      reports = (await Promise.all(names.map((n) => this.versions.reportOf(n)))).filter((r): r is NodeReport => r !== null);
      const settled = names.every((n) => reports.some((r) => r.node === n && (r.version >= version || r.failed?.version === version)));
      if (settled || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return reports.map((r) =>
      r.failed?.version === version ? { node: r.node, ok: false, errors: r.failed.errors } : r.version >= version ? { node: r.node, ok: true } : { node: r.node, ok: false, errors: ['did not report the new version in time'] },
    );
  }
}

function errorsOf(err: unknown): string[] {
  return err instanceof ConfigError ? [...err.errors] : [(err as Error).message];
}

/** restartWarnings names what an activation cannot apply to running listeners. */
function restartWarnings(cur: Config, next: Config): string[] {
  const w: string[] = [];
  if (JSON.stringify(next.listeners) !== JSON.stringify(cur.listeners)) w.push('listeners changed: restart to apply');
  if (JSON.stringify(next.store) !== JSON.stringify(cur.store)) w.push('store changed: restart to apply');
  if (JSON.stringify(next.limits) !== JSON.stringify(cur.limits)) w.push('limits: header size and header timeout apply after a restart');
  return w;
}
