/**
 * query: what the query parameters of RFC 7644 ask for: filter and paging (§3.4.2), POST .search
 * (§3.4.3), and attribute projection (§3.9), turned into Directory reads and response bodies.
 *
 *   ?filter=...&startIndex=&count=&attributes=&excludedAttributes=
 *     -> index lookup (userName/displayName/externalId/id eq) | ordered id page | scan
 *     -> ListResponse of present(record) (meta.location, $ref, projection)
 */
import type { Directory } from '../directory/directory.js';
import type { Kind } from '../directory/keys.js';
import type { DirectoryRecord } from '../directory/records.js';
import { GROUP_RESOURCE, USER_RESOURCE, getKey, resolveName, type ResourceTypeDef } from './attributes.js';
import { MAX_RESULTS } from './discovery.js';
import { badRequest } from './errors.js';
import { equalityLookup, matches, parseFilter, type Filter } from './filter.js';
import type { ScimResource } from './patch.js';
import { project } from './project.js';

/** LIST_SCHEMA is the ListResponse message schema (RFC 7644 §3.4.2). */
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
/** DEFAULT_COUNT is the page size when the client gives no `count` (RFC 7644 §3.4.2.4 leaves it to us). */
const DEFAULT_COUNT = 100;
const MAX_START_INDEX = 2 ** 31 - 1;

/** Params are the query (or .search body) parameters of a listing (RFC 7644 §3.4.2, §3.4.3). */
export interface Params {
  readonly filter?: unknown;
  readonly startIndex?: unknown;
  readonly count?: unknown;
  readonly attributes?: string | readonly string[] | undefined;
  readonly excludedAttributes?: string | readonly string[] | undefined;
}

/**
 * listResources answers a listing (RFC 7644 §3.4.2). Without a filter it pages the ordered id set;
 * `userName eq`, `displayName eq`, `externalId eq` and `id eq` (alone or in an `and`) come from an
 * index; any other filter scans the tenant, keeping only the requested page in memory.
 */
export async function listResources(directory: Directory, tenant: string, kind: Kind, p: Params, base: string): Promise<unknown> {
  const rt = kind === 'User' ? USER_RESOURCE : GROUP_RESOURCE;
  const startIndex = Math.min(MAX_START_INDEX, Math.max(1, intParam(p.startIndex, 'startIndex') ?? 1));
  const count = Math.min(MAX_RESULTS, Math.max(0, intParam(p.count, 'count') ?? DEFAULT_COUNT));
  const filter = p.filter === undefined || p.filter === '' ? undefined : parseFilter(p.filter as string, rt);
  const expand = wants(rt, p);
  let total: number;
  let page: DirectoryRecord[];
  if (filter === undefined) {
    [total, page] = await Promise.all([
      directory.count(tenant, kind),
      count === 0 ? [] : directory.pageIds(tenant, kind, startIndex - 1, count).then((ids) => directory.load(tenant, kind, ids, { expand })),
    ]);
  } else {
    const needed = uses(filter, kind === 'User' ? 'groups' : 'members');
    // An index gives a few candidates: read them once with everything the reply needs. A scan reads
    // only what the filter needs and expands the one page it keeps afterwards.
    const found = await candidates(directory, tenant, kind, filter, needed || expand);
    const read = found === null ? needed : needed || expand;
    const source = found ?? directory.scan(tenant, kind, { expand: read });
    total = 0;
    page = [];
    for await (const rec of source) {
      if (!matches(filter, rec.resource)) continue;
      if (total >= startIndex - 1 && page.length < count) page.push(rec);
      total++;
    }
    if (expand && !read) page = await directory.load(tenant, kind, page.map((r) => r.id), { expand });
  }
  return {
    schemas: [LIST_SCHEMA],
    totalResults: total,
    itemsPerPage: page.length,
    startIndex,
    Resources: page.map((rec) => present(rec, base, p)),
  };
}

/**
 * candidates answers an indexable equality (alone or in an `and`) from an index, reading the records
 * with `expand` as asked; null means scan. A name is looked up with its record in one read.
 */
async function candidates(directory: Directory, tenant: string, kind: Kind, filter: Filter, expand: boolean): Promise<DirectoryRecord[] | null> {
  for (const f of filter.op === 'and' ? filter.filters : [filter]) {
    const l = equalityLookup(f);
    if (l === null) continue;
    if (l.attr === 'id') return directory.load(tenant, kind, [l.value], { expand });
    if (l.attr === 'externalid') return directory.load(tenant, kind, await directory.idsByExternalId(tenant, kind, l.value), { expand });
    if ((l.attr === 'username' && kind === 'User') || (l.attr === 'displayname' && kind === 'Group')) {
      const rec = await directory.getByName(tenant, kind, l.value, { expand });
      return rec === null ? [] : [rec];
    }
  }
  return null;
}

/** present renders a record for the client: meta.location, `$ref`s, then attributes/excludedAttributes (RFC 7644 §3.9). */
export function present(rec: DirectoryRecord, base: string, view: Params): ScimResource {
  const rt = rec.kind === 'User' ? USER_RESOURCE : GROUP_RESOURCE;
  const r = rec.resource;
  const meta = getKey(r, 'meta') as Record<string, unknown>;
  const out: ScimResource = { ...r, meta: { ...meta, location: `${base}${rt.endpoint}/${rec.id}` } };
  const refs = (attr: string, endpoint: string): void => {
    const list = getKey(r, attr);
    if (Array.isArray(list)) out[attr] = list.map((el: Record<string, unknown>) => ({ ...el, $ref: `${base}${endpoint}/${String(el['value'])}` }));
  };
  if (rec.kind === 'User') refs('groups', '/Groups');
  else refs('members', '/Users');
  return project(out, { resourceType: rt, attributes: view.attributes, excludedAttributes: view.excludedAttributes });
}

/** wants tells whether a projection returns the derived attribute (`groups` / `members`), to skip reading it. */
export function wants(rt: ResourceTypeDef, view: Params): boolean {
  const attr = rt.name === 'User' ? 'groups' : 'members';
  const names = (v: Params['attributes']): string[] =>
    (v === undefined ? [] : typeof v === 'string' ? v.split(',') : v.flatMap((s) => s.split(','))).map((s) => s.trim()).filter((s) => s !== '');
  const named = (n: string, whole: boolean): boolean => {
    const r = resolveName(rt, n);
    return typeof r !== 'string' && r.kind === 'attr' && r.attr.name === attr && (!whole || r.sub === undefined);
  };
  const include = names(view.attributes);
  if (include.length > 0) return include.some((n) => named(n, false));
  return !names(view.excludedAttributes).some((n) => named(n, true));
}

/** uses tells whether a filter reads a top-level attribute of the resource. */
function uses(f: Filter, attr: string): boolean {
  switch (f.op) {
    case 'and':
    case 'or':
      return f.filters.some((x) => uses(x, attr));
    case 'not':
      return uses(f.filter, attr);
    default:
      return !f.path.extension && f.path.attr.name === attr;
  }
}

/**
 * intParam reads startIndex or count: an integer, from the query string or a .search body. RFC 7644
 * §3.4.2.4 clamps out-of-range values (startIndex < 1 is 1, a negative count is 0); a non-integer is 400.
 */
function intParam(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw badRequest('invalidValue', `${name} must be an integer`);
  return n;
}

/** searchParams reads a POST .search body (RFC 7644 §3.4.3). */
export function searchParams(body: Record<string, unknown> | undefined): Params {
  const b = body ?? {};
  const list = (v: unknown, name: string): string[] | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    throw badRequest('invalidSyntax', `${name} must be a list of attribute names`);
  };
  const filter = getKey(b, 'filter');
  if (filter !== undefined && typeof filter !== 'string') throw badRequest('invalidFilter', 'filter must be a string');
  return {
    filter,
    startIndex: getKey(b, 'startIndex'),
    count: getKey(b, 'count'),
    attributes: list(getKey(b, 'attributes'), 'attributes'),
    excludedAttributes: list(getKey(b, 'excludedAttributes'), 'excludedAttributes'),
  };
}
