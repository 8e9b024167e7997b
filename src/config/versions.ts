/**
 * versions: activated config versions, the staged draft, and the node reports of an activation, in
 * the Store, so every node sharing it sees one history.
 *
 *   config:active        the active version number
 *   config:v:<n>         version n: its text, who activated it, when, how (kept for the last KEEP)
 *   config:draft         the staged draft: text, the version it was based on, who saved it, when
 *   config:node:<name>   what a node last did with an activation: the version it runs, or why it could not
 *
 * A version number is claimed with createIfAbsent, so two nodes activating at once never get the
 * same one; the later claim takes the next number.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../sessions/store.js';

/** KEEP is how many activated versions the history keeps for rollback. */
export const KEEP = 20;

/** ActivationSource says how a version came to be activated. */
export type ActivationSource = 'start' | 'file' | 'draft' | 'rollback';

/** VersionRecord is one activated config version. */
export interface VersionRecord {
  readonly version: number;
  readonly text: string;
  readonly sha256: string;
  readonly activatedAt: string;
  /** activatedBy is the admin token's name, or "file" / "signal" / "start" for activations without one. */
  readonly activatedBy: string;
  readonly source: ActivationSource;
  /** rolledBackFrom is the version whose text a rollback brought back. */
  readonly rolledBackFrom?: number;
}

/** Draft is the staged config: edited through the admin API, changing nothing until activated. */
export interface Draft {
  readonly text: string;
  /** base is the active version when the draft was first saved. */
  readonly base: number;
  readonly updatedBy: string;
  readonly updatedAt: string;
}

/** NodeReport is what a node last did with an activation. */
export interface NodeReport {
  readonly node: string;
  /** version is the config version the node runs. */
  readonly version: number;
  /** failed is the version the node could not build, with every error; null when it runs the latest it was told of. */
  readonly failed: { readonly version: number; readonly errors: readonly string[] } | null;
  readonly at: string;
}

/** sha256 is a text's hex digest, to tell whether a file still holds the active version. */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const K = {
  active: 'config:active',
  version: (n: number) => `config:v:${n}`,
  draft: 'config:draft',
  node: (name: string) => `config:node:${name}`,
};

/** ACTIVATED is the channel on which a node announces a new active version (the message is its number). */
export const ACTIVATED_CHANNEL = 'config:activated';

/** ConfigVersions reads and writes the versions, the draft and the node reports. */
export class ConfigVersions {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** activeVersion is the active version number; 0 when none was ever activated. */
  async activeVersion(): Promise<number> {
    return Number(await this.store.get(K.active)) || 0;
  }

  /** get reads one version; null when unknown or pruned. */
  async get(version: number): Promise<VersionRecord | null> {
    const raw = await this.store.get(K.version(version));
    return raw === null ? null : (JSON.parse(raw) as VersionRecord);
  }

  /** active reads the active version's record. */
  async active(): Promise<VersionRecord | null> {
    const n = await this.activeVersion();
    return n === 0 ? null : this.get(n);
  }

  /**
   * claim records `text` as the next version and makes it the active one. The caller has already
   * built it; other nodes learn of it through `announce`.
   */
  async claim(text: string, activatedBy: string, source: ActivationSource, rolledBackFrom?: number): Promise<VersionRecord> {
    for (let n = (await this.activeVersion()) + 1; ; n++) {
      const rec: VersionRecord = {
        version: n,
        text,
        sha256: sha256(text),
        activatedAt: new Date(this.now()).toISOString(),
        activatedBy,
        source,
        ...(rolledBackFrom !== undefined ? { rolledBackFrom } : {}),
      };
      if (!(await this.store.createIfAbsent(K.version(n), JSON.stringify(rec)))) continue;
      // A later claim may already have moved the pointer on; never move it back.
      if ((await this.activeVersion()) < n) await this.store.set(K.active, String(n));
      if (n > KEEP) await this.store.del(K.version(n - KEEP));
      return rec;
    }
  }

  /** announce tells every node sharing the store that `version` is active. */
  announce(version: number): Promise<void> {
    return this.store.publish(ACTIVATED_CHANNEL, String(version));
  }

  /** history lists the last `limit` versions, newest first. */
  async history(limit = KEEP): Promise<VersionRecord[]> {
    const out: VersionRecord[] = [];
    for (let n = await this.activeVersion(); n > 0 && out.length < Math.min(limit, KEEP); n--) {
      const rec = await this.get(n);
      if (rec === null) break;
      out.push(rec);
    }
    return out;
  }

  async draft(): Promise<Draft | null> {
    const raw = await this.store.get(K.draft);
    return raw === null ? null : (JSON.parse(raw) as Draft);
  }

  /** saveDraft replaces the draft's text; its base stays the version it was first based on. */
  async saveDraft(text: string, updatedBy: string): Promise<Draft> {
    const base = (await this.draft())?.base ?? (await this.activeVersion());
    const d: Draft = { text, base, updatedBy, updatedAt: new Date(this.now()).toISOString() };
    await this.store.set(K.draft, JSON.stringify(d));
    return d;
  }

  async discardDraft(): Promise<boolean> {
    return (await this.store.del(K.draft)) > 0;
  }

  /** report records what this node did with an activation, for the activating node and /api/nodes. */
  async report(r: Omit<NodeReport, 'at'>, ttlMs: number): Promise<void> {
    await this.store.set(K.node(r.node), JSON.stringify({ ...r, at: new Date(this.now()).toISOString() }), ttlMs);
  }

  async reportOf(node: string): Promise<NodeReport | null> {
    const raw = await this.store.get(K.node(node));
    return raw === null ? null : (JSON.parse(raw) as NodeReport);
  }
}
