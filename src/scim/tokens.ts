/**
 * tokens: the SCIM bearer token of each tenant (RFC 6750), stored hashed.
 *
 *   admin "Generate Token" -> generate(tenant) -> prints the token once; the Store keeps SHA-256 only
 *   IdP request "Authorization: Bearer <t>" -> verify(tenant, t) -> hash, compare in constant time
 *
 * One key per tenant, so generating a new token replaces the old one in a single write. A token is bound
 * to its tenant by the key it is stored under, so a token of one IdP never opens another IdP's base URL.
 *
 * verify keeps the digest it last read for a tenant for up to VERIFIED_TTL_MS, so a busy IdP costs no
 * Store round trip per request. Only acceptance comes from that memory: a token that does not match it is
 * checked against the Store before it is refused, so a token generated on another node works at once.
 * Generating or revoking through any ScimTokens on the same Store in this process replaces the memory
 * at once, so the old token stops working on this node immediately and on other nodes within a second.
 *
 * The same mechanism, under its own key namespace, stores the admin API's tokens (src/admin/tokens.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../sessions/store.js';

/** TOKEN_BYTES is the entropy of a token: 32 random bytes, 43 base64url characters. */
export const TOKEN_BYTES = 32;

/** MAX_TOKEN_LENGTH bounds what verify hashes; anything longer cannot be one of ours. */
const MAX_TOKEN_LENGTH = 512;

/** TokenInfo is what the admin may see about a tenant's token: never the token or its hash. */
export interface TokenInfo {
  readonly createdAt: string;
}

interface StoredToken {
  readonly sha256: string;
  readonly createdAt: string;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** parseDigest reads a stored hex digest; one that is not a SHA-256 digest matches no token. */
function parseDigest(hex: string): Buffer | null {
  const b = Buffer.from(hex, 'hex');
  return b.length === 32 ? b : null;
}

/** A digest to compare against when a tenant has no token, so both paths do the same work. */
const NO_TOKEN = digest(randomBytes(TOKEN_BYTES).toString('base64url'));

/** VERIFIED_TTL_MS bounds how long another node's rotation can take to reach this one. */
export const VERIFIED_TTL_MS = 1_000;

/** Known is a tenant's stored digest as last read (null: no token), and when it was read. */
interface Known {
  readonly sha256: Buffer | null;
  readonly at: number;
}

/**
 * known is shared by every BearerTokens over one Store object, so a rotation through the admin API's
 * instance is seen at once by the SCIM handler's, however the composition root wires them.
 */
const knownByStore = new WeakMap<Store, Map<string, Known>>();

/**
 * BearerTokens generates, verifies and revokes one bearer token per tenant under a key namespace
 * (`scim:token:` for SCIM, `admin:token:` for the admin API). The memory is keyed by the full store
 * key, so two namespaces on one Store never see each other's tokens.
 */
export class BearerTokens {
  private readonly known: Map<string, Known>;

  constructor(
    private readonly store: Store,
    private readonly namespace: string,
    private readonly now: () => number = Date.now,
  ) {
    let known = knownByStore.get(store);
    if (known === undefined) knownByStore.set(store, (known = new Map()));
    this.known = known;
  }

  private key(tenant: string): string {
    return `${this.namespace}${tenant}`;
  }

  /** generate makes a new random token for a tenant and replaces the old one at once; returns it (shown once). */
  async generate(tenant: string): Promise<string> {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const stored: StoredToken = { sha256: digest(token).toString('hex'), createdAt: new Date(this.now()).toISOString() };
    await this.store.set(this.key(tenant), JSON.stringify(stored));
    this.known.set(this.key(tenant), { sha256: parseDigest(stored.sha256), at: this.now() });
    return token;
  }

  /** verify tells whether `presented` is the tenant's current token, comparing SHA-256 digests in constant time. */
  async verify(tenant: string, presented: string): Promise<boolean> {
    if (presented === '' || presented.length > MAX_TOKEN_LENGTH) return false;
    const d = digest(presented);
    const key = this.key(tenant);
    const k = this.known.get(key);
    const age = k === undefined ? -1 : this.now() - k.at;
    // age < 0: the clock went back, so the memory's age is unknown; read again.
    if (k !== undefined && k.sha256 !== null && age >= 0 && age < VERIFIED_TTL_MS && timingSafeEqual(d, k.sha256)) return true;
    const at = this.now();
    const raw = await this.store.get(key);
    const stored = raw === null ? null : parseDigest((JSON.parse(raw) as StoredToken).sha256);
    // A generate or revoke that finished while this read was on its way is newer: keep its entry.
    if (this.known.get(key) === k) this.known.set(key, { sha256: stored, at });
    // Both sides are 32-byte digests, so timingSafeEqual never throws on a length mismatch and the
    // comparison time says nothing about the token.
    const same = timingSafeEqual(d, stored ?? NO_TOKEN);
    return stored !== null && same;
  }

  /** info tells whether a tenant has a token and since when. */
  async info(tenant: string): Promise<TokenInfo | null> {
    const raw = await this.store.get(this.key(tenant));
    return raw === null ? null : { createdAt: (JSON.parse(raw) as StoredToken).createdAt };
  }

  /** revoke removes a tenant's token; SCIM for that tenant answers 401 until a new one is generated. */
  async revoke(tenant: string): Promise<void> {
    await this.store.del(this.key(tenant));
    this.known.set(this.key(tenant), { sha256: null, at: this.now() });
  }
}

/** ScimTokens are the per-tenant SCIM bearer tokens (tenant `<orgId>/<idpId>`). */
export class ScimTokens extends BearerTokens {
  constructor(store: Store, now: () => number = Date.now) {
    super(store, 'scim:token:', now);
  }
}
