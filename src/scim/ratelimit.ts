/**
 * ratelimit: the per-tenant SCIM request limit, 5 requests per second by default as the ZIA service has.
 *
 *   request -> check(tenant) -> Store.incr("scim:rl:<tenant>:<window>", ttl) -> allowed | 429 Retry-After
 *
 * A fixed window counted in the Store, so every node shares one budget per tenant. The window number is
 * in the key (Unix time / window length), so all nodes agree on where a window ends and can tell the
 * client how long to wait; the TTL only cleans up.
 */
import { DEFAULT_SCIM_RATE_LIMIT } from '../config/shape.js';
import type { Store } from '../sessions/store.js';

/** RateLimitDecision is the answer for one request. */
export interface RateLimitDecision {
  readonly allowed: boolean;
  /** retryAfterSeconds is the Retry-After value (RFC 9110 §10.2.3) when not allowed: whole seconds, at least 1. */
  readonly retryAfterSeconds: number;
}

/** RateLimitOptions: `limit` requests per `windowMs`, per tenant; 0 turns the limit off. */
export interface RateLimitOptions {
  /** limit per window, or a function of the tenant (so per-IdP settings follow config activation). */
  readonly limit?: number | ((tenant: string) => number);
  readonly windowMs?: number;
  readonly now?: () => number;
}

export { DEFAULT_SCIM_RATE_LIMIT };

const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true, retryAfterSeconds: 0 });

/** ScimRateLimiter is a fixed-window counter per tenant, shared across nodes through the Store. */
export class ScimRateLimiter {
  private readonly limit: (tenant: string) => number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    opts: RateLimitOptions = {},
  ) {
    const limit = opts.limit ?? DEFAULT_SCIM_RATE_LIMIT;
    this.limit = typeof limit === 'function' ? limit : () => limit;
    this.windowMs = opts.windowMs ?? 1_000;
    this.now = opts.now ?? Date.now;
    if (!(this.windowMs > 0)) throw new Error('ratelimit: windowMs must be positive');
  }

  /** check counts one request of a tenant and says whether it may proceed. An off limit costs no Store call. */
  async check(tenant: string): Promise<RateLimitDecision> {
    const limit = this.limit(tenant);
    if (!(limit > 0)) return ALLOWED;
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    // Twice the window: a node whose clock runs a little behind still finds the counter.
    const n = await this.store.incr(`scim:rl:${tenant}:${window}`, 2 * this.windowMs);
    if (n <= limit) return ALLOWED;
    const waitMs = (window + 1) * this.windowMs - now;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
}
