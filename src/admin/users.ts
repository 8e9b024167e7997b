/**
 * users: the User Management list over every IdP's directory, filtered and paged.
 *
 *   GET /api/users?idp=okta&name=ali&group=Finance&department=Legal&source=scim&active=false&offset=0&limit=50
 *   GET /api/groups?idp=okta&name=fin&source=jit
 *
 * `name` matches a substring of the login or display name, ignoring case; `group` and `department`
 * match a whole name, ignoring case. Without filters a page is read straight from the directory's
 * index; with filters the directory is scanned (an admin query, not a hot path).
 */
import type { Directory, GroupSummary, UserSummary } from '../directory/directory.js';
import { HttpError } from '../http/errors.js';
import type { Runtime } from '../runtime.js';

/** UserFilter is a parsed user query; an absent field matches everyone. */
export interface UserFilter {
  readonly name?: string;
  readonly group?: string;
  readonly department?: string;
  readonly source?: 'scim' | 'jit';
  readonly active?: boolean;
}

/** Paging is one page of a list. */
export interface Paging {
  readonly offset: number;
  readonly limit: number;
}

const MAX_FILTER = 256;

/** parseUserFilter reads the filters from a query string; a malformed one is a 400 naming it. */
export function parseUserFilter(q: URLSearchParams): UserFilter {
  const text = (key: string): string | undefined => {
    const v = q.get(key);
    if (v === null || v === '') return undefined;
    if (v.length > MAX_FILTER) throw new HttpError(400, 'bad_filter', `${key} is longer than ${MAX_FILTER} characters.`);
    return v.toLowerCase();
  };
  const source = q.get('source');
  if (source !== null && source !== '' && source !== 'scim' && source !== 'jit') throw new HttpError(400, 'bad_filter', 'source must be scim or jit.');
  const active = q.get('active');
  if (active !== null && active !== '' && active !== 'true' && active !== 'false') throw new HttpError(400, 'bad_filter', 'active must be true or false.');
  const f: { -readonly [K in keyof UserFilter]: UserFilter[K] } = {};
  const name = text('name');
  const group = text('group');
  const department = text('department');
  if (name !== undefined) f.name = name;
  if (group !== undefined) f.group = group;
  if (department !== undefined) f.department = department;
  if (source === 'scim' || source === 'jit') f.source = source;
  if (active === 'true' || active === 'false') f.active = active === 'true';
  return f;
}

/** userMatches tells whether a user passes every filter (filter text is already lower-case). */
export function userMatches(u: UserSummary, f: UserFilter): boolean {
  if (f.source !== undefined && u.source !== f.source) return false;
  if (f.active !== undefined && u.active !== f.active) return false;
  if (f.department !== undefined && (u.department ?? '').toLowerCase() !== f.department) return false;
  if (f.group !== undefined && !u.groups.some((g) => g.toLowerCase() === f.group)) return false;
  if (f.name !== undefined && !u.userName.toLowerCase().includes(f.name) && !(u.displayName ?? '').toLowerCase().includes(f.name)) return false;
  return true;
}

/** groupMatches applies the filters a group has: name (substring of its display name) and source. */
export function groupMatches(g: GroupSummary, f: UserFilter): boolean {
  if (f.source !== undefined && g.source !== f.source) return false;
  return f.name === undefined || g.displayName.toLowerCase().includes(f.name);
}

function isEmpty(f: UserFilter): boolean {
  return Object.keys(f).length === 0;
}

/** tenantsOf is the IdPs a query covers: the one named by `idp`, or every configured one. */
export function tenantsOf(rt: Runtime, idp: string | null): string[] {
  if (idp === null || idp === '') return [...rt.idps.keys()];
  if (!rt.idps.has(idp)) throw new HttpError(404, 'unknown_idp', `No IdP "${idp.slice(0, 64)}" is configured (${[...rt.idps.keys()].join(', ') || 'none'}).`);
  return [idp];
}

const SCAN_BATCH = 500;

/**
 * listPage collects one page of matching rows across IdPs, in IdP order and then directory order,
 * with the total number of matches. `read` is the directory's own paged list for one IdP.
 */
async function listPage<R>(
  idps: readonly string[],
  page: Paging,
  read: (idp: string, p: Paging) => Promise<{ total: number; rows: readonly R[] }>,
  keep: ((r: R) => boolean) | null,
): Promise<{ total: number; rows: (R & { idp: string })[] }> {
  const rows: (R & { idp: string })[] = [];
  let total = 0;
  for (const idp of idps) {
    if (keep === null) {
      // No filter: the directory pages itself; only the rows this page needs are read.
      // A full page still asks for one row, for the IdP's total.
      const need = page.limit - rows.length;
      const r = await read(idp, { offset: Math.max(0, page.offset - total), limit: Math.max(1, need) });
      for (const row of r.rows.slice(0, need)) rows.push({ ...row, idp });
      total += r.total;
      continue;
    }
    for (let offset = 0; ; offset += SCAN_BATCH) {
      const batch = await read(idp, { offset, limit: SCAN_BATCH });
      for (const r of batch.rows) {
        if (!keep(r)) continue;
        if (total >= page.offset && rows.length < page.limit) rows.push({ ...r, idp });
        total++;
      }
      if (batch.rows.length < SCAN_BATCH) break;
    }
  }
  return { total, rows };
}

/** listUsers is the filtered, paged user list over the given IdPs. */
export async function listUsers(dir: Directory, orgId: string, idps: readonly string[], f: UserFilter, page: Paging): Promise<{ total: number; users: (UserSummary & { idp: string })[] }> {
  const r = await listPage(
    idps,
    page,
    async (idp, p) => {
      const l = await dir.listUsers(`${orgId}/${idp}`, p);
      return { total: l.total, rows: l.users };
    },
    isEmpty(f) ? null : (u) => userMatches(u, f),
  );
  return { total: r.total, users: r.rows };
}

/** listGroups is the filtered, paged group list over the given IdPs. */
export async function listGroups(dir: Directory, orgId: string, idps: readonly string[], f: UserFilter, page: Paging): Promise<{ total: number; groups: (GroupSummary & { idp: string })[] }> {
  const r = await listPage(
    idps,
    page,
    async (idp, p) => {
      const l = await dir.listGroups(`${orgId}/${idp}`, p);
      return { total: l.total, rows: l.groups };
    },
    isEmpty(f) ? null : (g) => groupMatches(g, f),
  );
  return { total: r.total, groups: r.rows };
}
