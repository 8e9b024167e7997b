/**
 * keys: the directory's key layout in the Store, and its resource ids.
 *
 *   tenant "acme/okta" -> "{dir:acme/okta}:user:<id>", "{dir:acme/okta}:uname:<lower userName>", ...
 *
 * Every key of one tenant starts with the same hash tag `{dir:<tenant>}`, so Redis Cluster maps them to
 * one slot and one `Store.atomic` call can change any of them together (Cluster spec, "Hash tags").
 * A userName or displayName may contain `{`, `}` or `:`; that is harmless because Cluster hashes the
 * first `{...}` only and the free-text part always comes last.
 */
import { randomBytes } from 'node:crypto';

/** TENANT matches `<orgId>/<idpId>`, the tenant of one IdP (what the admin types into Okta's "Zscaler ID"). */
export const TENANT = /^[A-Za-z0-9._~-]{1,128}\/[A-Za-z0-9._~-]{1,128}$/;

/** assertTenant throws when a tenant name could break the key layout; callers validate input before this. */
export function assertTenant(tenant: string): void {
  if (!TENANT.test(tenant)) throw new Error(`directory: "${tenant.slice(0, 300)}" is not <orgId>/<idpId>`);
}

/**
 * fold is the case-insensitive form of userName and displayName used by the uniqueness indexes. It is
 * the same lower-casing the filter evaluator applies to caseExact=false attributes, so `userName eq`
 * from the index and from a scan agree (RFC 7643 §2.1, §4.1.1: userName is caseExact false).
 */
export function fold(name: string): string {
  return name.toLowerCase();
}

/** Kind is a directory resource kind, named as the SCIM resource type. */
export type Kind = 'User' | 'Group';

/** DirectoryKeys builds every key of one tenant. */
export class DirectoryKeys {
  readonly tag: string;

  constructor(readonly tenant: string) {
    assertTenant(tenant);
    this.tag = `{dir:${tenant}}:`;
  }

  /** record is one user or group as JSON (groups without their members). */
  record(kind: Kind, id: string): string {
    return `${this.tag}${kind === 'User' ? 'user' : 'group'}:${id}`;
  }

  /** ids is the ordered set of all user or group ids, for paging. */
  ids(kind: Kind): string {
    return `${this.tag}${kind === 'User' ? 'users' : 'groups'}`;
  }

  /** name is the unique index: folded userName -> user id, or folded displayName -> group id. */
  name(kind: Kind, name: string): string {
    return `${this.tag}${kind === 'User' ? 'uname' : 'gname'}:${fold(name)}`;
  }

  /** externalId is the set of ids carrying one externalId; it is caseExact and not unique (RFC 7643 §3.1). */
  externalId(kind: Kind, externalId: string): string {
    return `${this.tag}${kind === 'User' ? 'uext' : 'gext'}:${externalId}`;
  }

  /** members is the set of user ids in a group. */
  members(groupId: string): string {
    return `${this.tag}gmem:${groupId}`;
  }

  /** groupsOf is the set of group ids a user is in: the reverse of members. */
  groupsOf(userId: string): string {
    return `${this.tag}ugroups:${userId}`;
  }

  /** addVersion counts additions of a user to groups; user deletion and additions serialise on it. */
  addVersion(userId: string): string {
    return `${this.tag}uadd:${userId}`;
  }

  /**
   * claim is the compare-and-set key of one write: the writer that bumps `what` to `version` creates it
   * with `atomic(..., ifAbsent)`, so of two writers that read the same version only one commits.
   */
  claim(what: string, version: number): string {
    return `${this.tag}claim:${what}:${version}`;
  }
}

/**
 * newId makes a resource id: a UUIDv7 (RFC 9562 §5.7), 48 bits of Unix milliseconds then 74 random
 * bits. Id sets are listed in byte order, so pages come back roughly in creation order, and ids are
 * never reused, so a stale reference can never point at a new resource.
 */
export function newId(now = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = ((b[6] as number) & 0x0f) | 0x70;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
