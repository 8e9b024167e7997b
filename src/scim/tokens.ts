/**
 * tokens: the SCIM bearer token of each tenant (RFC 6750), stored hashed.
 *
 *   admin "Generate Token" -> generate(tenant) -> prints the token once; the Store keeps SHA-256 only
 *   IdP request "Authorization: Bearer <t>" -> verify(tenant, t) -> hash, compare in constant time
 *
 * One key per tenant, so generating a new token replaces the old one in a single write: the old token
 * stops working on every node at once. A token is bound to its tenant by the key it is stored under,
 * so a token of one IdP never opens another IdP's base URL.
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

/** A digest to compare against when a tenant has no token, so both paths do the same work. */
const NO_TOKEN = digest(randomBytes(TOKEN_BYTES).toString('base64url'));

/** ScimTokens generates, verifies and revokes per-tenant SCIM bearer tokens. */
export class ScimTokens {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  private key(tenant: string): string {
    return `scim:token:${tenant}`;
  }

  /** generate makes a new random token for a tenant and replaces the old one at once; returns it (shown once). */
  async generate(tenant: string): Promise<string> {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const stored: StoredToken = { sha256: digest(token).toString('hex'), createdAt: new Date(this.now()).toISOString() };
    await this.store.set(this.key(tenant), JSON.stringify(stored));
    return token;
  }

  /** verify tells whether `presented` is the tenant's current token, comparing SHA-256 digests in constant time. */
  async verify(tenant: string, presented: string): Promise<boolean> {
    if (presented === '' || presented.length > MAX_TOKEN_LENGTH) return false;
    const raw = await this.store.get(this.key(tenant));
    const expected = raw === null ? NO_TOKEN : Buffer.from((JSON.parse(raw) as StoredToken).sha256, 'hex');
    // Both sides are 32-byte digests, so timingSafeEqual never throws on a length mismatch and the
    // comparison time says nothing about the token.
    const same = expected.length === NO_TOKEN.length && timingSafeEqual(digest(presented), expected);
    return raw !== null && same;
  }

  /** info tells whether a tenant has a token and since when. */
  async info(tenant: string): Promise<TokenInfo | null> {
    const raw = await this.store.get(this.key(tenant));
    return raw === null ? null : { createdAt: (JSON.parse(raw) as StoredToken).createdAt };
  }

  /** revoke removes a tenant's token; SCIM for that tenant answers 401 until a new one is generated. */
  async revoke(tenant: string): Promise<void> {
    await this.store.del(this.key(tenant));
  }
}
