/**
 * records: how a user or group is stored, and how it is rendered back as a SCIM resource or an admin row.
 *
 *   SCIM resource -> sanitize -> StoredRecord (JSON in the Store) -> render (+ groups / members) -> resource
 *
 * A stored record keeps the client's attributes only. `id` and `meta` (RFC 7643 §3.1) are the server's,
 * a user's `groups` (RFC 7643 §4.1.2, read-only) is derived from group membership, and a group's
 * `members` live in a set of their own, so adding one member to a large group writes one set member.
 */
import { createHash } from 'node:crypto';
import { listMatches, type EntityTag } from '../http/etag.js';
import { getKey, SCHEMA_ENTERPRISE_USER } from '../scim/attributes.js';
import { badRequest } from '../scim/errors.js';
import { cloneJson } from '../scim/json.js';
import type { ScimResource } from '../scim/patch.js';
import type { Kind } from './keys.js';

/** Source says who created a resource: SCIM provisioning or SAML just-in-time provisioning. */
export type Source = 'scim' | 'jit';

/** StoredRecord is the JSON kept under a record key. */
export interface StoredRecord {
  readonly source: Source;
  readonly created: string;
  readonly lastModified: string;
  /** version counts committed writes; meta.version and the ETag are made from it (etagOf). */
  readonly version: number;
  /** resource holds the client's attributes: no id, meta, password, groups or members. */
  readonly resource: ScimResource;
}

/** DirectoryRecord is one user or group as the directory returns it. */
export interface DirectoryRecord {
  readonly kind: Kind;
  readonly id: string;
  readonly source: Source;
  /** version is the stored record's version, the one If-Match on a write names (namesVersion). */
  readonly version: number;
  /** etag is meta.version, a weak entity tag of this representation (etagOf, RFC 7644 §3.14). */
  readonly etag: string;
  /**
   * resource is the SCIM form: id, meta without `location` (the server knows its base URL), and
   * `groups` or `members` when they were asked for.
   */
  readonly resource: ScimResource;
}

/** GroupRef is one group of a user, as rendered in the user's `groups`. */
export interface GroupRef {
  readonly id: string;
  readonly displayName: string;
}

/** UserSummary is one row of the admin's User Management view. */
export interface UserSummary {
  readonly id: string;
  readonly userName: string;
  readonly displayName: string | undefined;
  readonly active: boolean;
  readonly source: Source;
  readonly department: string | undefined;
  /** groups are display names, in group id order. */
  readonly groups: readonly string[];
  readonly externalId: string | undefined;
  readonly created: string;
  readonly lastModified: string;
}

/** GroupSummary is one row of the admin's group list. */
export interface GroupSummary {
  readonly id: string;
  readonly displayName: string;
  readonly source: Source;
  readonly members: number;
  readonly externalId: string | undefined;
  readonly created: string;
  readonly lastModified: string;
}

/** DERIVED are the attributes a stored resource never keeps; `password` is accepted and never stored. */
const DERIVED: Record<Kind, readonly string[]> = {
  User: ['id', 'meta', 'groups', 'password'],
  Group: ['id', 'meta', 'members'],
};

/**
 * etagOf renders a version as a weak entity tag, `W/"<version>"`. A user rendered with groups adds a
 * digest of them, `W/"<version>-<digest>"`: membership is written on the group side and does not
 * move the user's version, yet it is part of the user's representation, so a conditional GET must
 * not answer 304 to a client that has an older group list (RFC 9110 §13.1.2).
 */
export function etagOf(version: number, groups: readonly GroupRef[] = []): string {
  if (groups.length === 0) return `W/"${version}"`;
  const sorted = [...groups].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((g) => [g.id, g.displayName]);
  const digest = createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16);
  return `W/"${version}-${digest}"`;
}

const TAG = /^(\d{1,15})(?:-[0-9a-f]{16})?$/;

/** tagVersion is the version one of our entity tags names, or null for a tag we never made. */
export function tagVersion(tag: EntityTag): number | null {
  const m = TAG.exec(tag.opaque);
  return m === null ? null : Number(m[1]);
}

/**
 * namesVersion tells whether an If-Match or If-None-Match field names `version` (or is `*`): the
 * conditions of a write, and a GET's If-Match (RFC 7644 §3.14). It compares weakly, although RFC 9110 §13.1.1 has If-Match compare strongly:
 * SCIM's versions are weak tags and RFC 7644 §3.14 sends them in If-Match. It compares the version
 * only: a user's groups are read-only there, so a tag from before a membership change still names
 * the version a write is based on.
 */
export function namesVersion(field: string, version: number): boolean {
  return listMatches(field, { weak: true, opaque: String(version) }, (listed) => tagVersion(listed) === version);
}

/** sanitize copies a resource without the server's and the derived attributes, in any spelling. */
export function sanitize(kind: Kind, resource: ScimResource): ScimResource {
  const drop = new Set(DERIVED[kind].map((n) => n.toLowerCase()));
  const out: ScimResource = {};
  for (const [k, v] of Object.entries(resource)) if (!drop.has(k.toLowerCase())) out[k] = cloneJson(v);
  return out;
}

/** requiredName reads userName (User) or displayName (Group), which must be a non-empty string. */
export function requiredName(kind: Kind, resource: ScimResource): string {
  const attr = kind === 'User' ? 'userName' : 'displayName';
  const v = getKey(resource, attr);
  if (typeof v !== 'string' || v.trim() === '') throw badRequest('invalidValue', `${attr} is required`);
  return v;
}

/** externalIdOf reads externalId when it is a non-empty string. */
export function externalIdOf(resource: ScimResource): string | undefined {
  const v = getKey(resource, 'externalId');
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** isActive is a user's state: only an explicit `active: false` deactivates (RFC 7643 §4.1.1). */
export function isActive(resource: ScimResource): boolean {
  return getKey(resource, 'active') !== false;
}

/** departmentOf reads the enterprise extension's department (RFC 7643 §4.3). */
export function departmentOf(resource: ScimResource): string | undefined {
  const v = getKey(getKey(resource, SCHEMA_ENTERPRISE_USER), 'department');
  return typeof v === 'string' ? v : undefined;
}

/**
 * memberIdsOf lists the distinct member ids of a group resource, in order. A member is a user id in
 * `value` (RFC 7643 §4.2); anything else is a 400, since the directory keeps no dangling references.
 */
export function memberIdsOf(resource: ScimResource): string[] {
  const members = getKey(resource, 'members');
  if (members === undefined || members === null) return [];
  if (!Array.isArray(members)) throw badRequest('invalidValue', 'members must be a list');
  const ids = new Set<string>();
  members.forEach((m, i) => {
    const v = getKey(m, 'value');
    if (typeof v !== 'string' || v === '') throw badRequest('invalidValue', `members[${i}].value must be a user id`);
    ids.add(v);
  });
  return [...ids];
}

/**
 * render builds the SCIM resource: `schemas` and `id` first, the client's attributes, the derived
 * `groups` or `members`, and `meta` (RFC 7643 §3.1) last. The resource shares nothing with `rec`, which
 * a write goes on to store; renderParsed is for a record just parsed from the Store, which nothing else
 * holds, so its values are used as they are instead of being copied once more.
 */
export function render(kind: Kind, id: string, rec: StoredRecord, derived?: readonly GroupRef[] | readonly string[]): DirectoryRecord {
  return renderOwned(kind, id, { ...rec, resource: cloneJson(rec.resource) }, derived);
}

/** renderParsed is render for a record freshly parsed from its JSON: nothing else can hold its values. */
export function renderParsed(kind: Kind, id: string, rec: StoredRecord, derived?: readonly GroupRef[] | readonly string[]): DirectoryRecord {
  return renderOwned(kind, id, rec, derived);
}

function renderOwned(kind: Kind, id: string, rec: StoredRecord, derived: readonly GroupRef[] | readonly string[] | undefined): DirectoryRecord {
  const { schemas, ...attrs } = rec.resource;
  const resource: ScimResource = { schemas, id, ...attrs };
  if (derived !== undefined && derived.length > 0) {
    if (kind === 'User') {
      // RFC 7643 §4.1.2: type is "direct" or "indirect"; Tollgate has no nested groups.
      resource['groups'] = (derived as readonly GroupRef[]).map((g) => ({ value: g.id, display: g.displayName, type: 'direct' }));
    } else {
      resource['members'] = (derived as readonly string[]).map((value) => ({ value, type: 'User' }));
    }
  }
  const etag = etagOf(rec.version, kind === 'User' ? (derived as readonly GroupRef[] | undefined) : undefined);
  resource['meta'] = { resourceType: kind, created: rec.created, lastModified: rec.lastModified, version: etag };
  return { kind, id, source: rec.source, version: rec.version, etag, resource };
}

/** summarizeUser is the admin row of a user. */
export function summarizeUser(id: string, rec: StoredRecord, groups: readonly GroupRef[]): UserSummary {
  const displayName = getKey(rec.resource, 'displayName');
  return {
    id,
    userName: requiredName('User', rec.resource),
    displayName: typeof displayName === 'string' ? displayName : undefined,
    active: isActive(rec.resource),
    source: rec.source,
    department: departmentOf(rec.resource),
    groups: groups.map((g) => g.displayName),
    externalId: externalIdOf(rec.resource),
    created: rec.created,
    lastModified: rec.lastModified,
  };
}

/** summarizeGroup is the admin row of a group. */
export function summarizeGroup(id: string, rec: StoredRecord, members: number): GroupSummary {
  return {
    id,
    displayName: requiredName('Group', rec.resource),
    source: rec.source,
    members,
    externalId: externalIdOf(rec.resource),
    created: rec.created,
    lastModified: rec.lastModified,
  };
}
