/**
 * commit: all-or-nothing directory writes with optimistic concurrency, over `Store.atomic`.
 *
 *   build (fresh reads -> Tx of ops + ifAbsent keys) -> Store.atomic(ops, ifAbsent)
 *     -> true: run `after` (hooks), return the result
 *     -> false: a racing writer committed first; back off, re-read, rebuild
 *
 * A write based on version n of a record also creates the claim key for version n+1 with `ifAbsent`,
 * so of two writers that read the same version exactly one commits (compare-and-set without a
 * compare primitive). Unique-name index keys go in `ifAbsent` the same way, so a name taken by a racing
 * create is found by the rebuild, which then fails with 409 uniqueness.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ScimError } from '../scim/errors.js';
import { StoreUnavailableError, type Store, type WriteOp } from '../sessions/store.js';

/** CLAIM_TTL_MS is how long a version claim lives; a write that takes longer than half of it is abandoned. */
export const CLAIM_TTL_MS = 10 * 60_000;
/** MAX_ATTEMPTS bounds the rebuilds of a write that keeps losing races; then the client gets a 409. */
const MAX_ATTEMPTS = 50;

/** Tx collects the writes and the ifAbsent keys of one atomic commit. */
export class Tx {
  readonly ops: WriteOp[] = [];
  readonly ifAbsent: string[] = [];
  /** put writes a string, or a record as JSON. */
  put(key: string, value: string | object): void {
    this.ops.push({ op: 'set', key, value: typeof value === 'string' ? value : JSON.stringify(value) });
  }
  del(key: string): void {
    this.ops.push({ op: 'del', key });
  }
  sadd(key: string, member: string): void {
    this.ops.push({ op: 'sadd', key, member });
  }
  srem(key: string, member: string): void {
    this.ops.push({ op: 'srem', key, member });
  }
  /** absent makes the commit fail when key exists. */
  absent(key: string): void {
    this.ifAbsent.push(key);
  }
  /** claim creates a version claim (see DirectoryKeys.claim): it must not exist, and it expires. */
  claim(key: string): void {
    this.ifAbsent.push(key);
    this.ops.push({ op: 'set', key, value: '1', ttlMs: CLAIM_TTL_MS });
  }
}

/** Plan is one attempt: the writes, the result to return, and what to run once they are committed. */
export interface Plan<T> {
  readonly tx: Tx;
  readonly result: T;
  readonly after?: () => Promise<void>;
}

/**
 * commit runs build and applies its Tx atomically, rebuilding from fresh reads while racing writers win.
 * build may run several times, so everything it calls (a SCIM PATCH, say) must be pure.
 */
export async function commit<T>(store: Store, build: () => Promise<Plan<T>>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const plan = await build();
    // A claim outlives the slowest sane write many times over; a write this slow could be stale.
    if (Date.now() - started > CLAIM_TTL_MS / 2) throw new StoreUnavailableError('directory: write took too long');
    if (await store.atomic(plan.tx.ops, plan.tx.ifAbsent)) {
      await plan.after?.();
      return plan.result;
    }
    if (attempt >= MAX_ATTEMPTS) {
      // RFC 7644 §3.12: 409 is also "the version does not match the resource's latest version".
      throw new ScimError(409, undefined, 'the resource is being changed by other requests; retry');
    }
    await sleep(Math.random() * Math.min(100, 2 ** attempt));
  }
}
