/**
 * sessions: the admin's view of who is signed in, and revocation of one session, a user's or a
 * location's.
 *
 *   GET  /api/sessions?user=alice@example.com&location=HQ&idp=okta -> Sessions.scan -> filter -> page
 *   POST /api/sessions/revoke {"session"|"user"|"location": ...}  -> Sessions.revoke (every node drops it)
 *
 * Revocation is the one the status page's Logout and SCIM deprovisioning use: the record and its
 * indexes go from the store and an invalidation empties every node's memory of them at once.
 */
import type { Directory } from '../directory/directory.js';
import { HttpError } from '../http/errors.js';
import type { Runtime } from '../runtime.js';
import type { SessionRecord, Sessions } from '../sessions/session.js';
import { revokeLogin } from './routes.js';
import type { Paging } from './users.js';

/** SessionFilter is a session query; filter text is lower-case, an absent field matches every session. */
export interface SessionFilter {
  readonly user?: string;
  readonly location?: string;
  readonly idp?: string;
}

/** SessionView is one row of the session list: the record (times as ISO strings), and how it is used. */
export type SessionView = Omit<SessionRecord, 'userId' | 'createdAt' | 'expiresAt'> & {
  readonly createdAt: string;
  readonly expiresAt: string;
  /** When a node last identified the session (to the minute), and how; null before its first request. */
  readonly lastSeen: string | null;
  readonly identifiedBy: string | null;
  /** Sites the session has a host cookie on. */
  readonly cookies: number;
};

/** parseSessionFilter reads `user`, `location` and `idp` from a query. */
export function parseSessionFilter(q: URLSearchParams): SessionFilter {
  const f: { -readonly [K in keyof SessionFilter]: SessionFilter[K] } = {};
  for (const key of ['user', 'location', 'idp'] as const) {
    const v = q.get(key);
    if (v === null || v === '') continue;
    if (v.length > 256) throw new HttpError(400, 'bad_filter', `${key} is longer than 256 characters.`);
    f[key] = v.toLowerCase();
  }
  return f;
}

/** sessionMatches compares whole names, ignoring case (login names and locations are case-insensitive). */
export function sessionMatches(s: SessionRecord, f: SessionFilter): boolean {
  return (
    (f.user === undefined || s.loginName.toLowerCase() === f.user) &&
    (f.location === undefined || s.location.toLowerCase() === f.location) &&
    (f.idp === undefined || s.idp.toLowerCase() === f.idp)
  );
}

/** listSessions pages the live sessions that match, in session-id order (stable between pages). */
export async function listSessions(sessions: Sessions, f: SessionFilter, page: Paging): Promise<{ total: number; sessions: SessionView[] }> {
  const hits: SessionRecord[] = [];
  let total = 0;
  for await (const s of sessions.scan()) {
    if (!sessionMatches(s, f)) continue;
    if (total >= page.offset && hits.length < page.limit) hits.push(s);
    total++;
  }
  const views = await Promise.all(hits.map((s) => viewOf(sessions, s)));
  return { total, sessions: views };
}

async function viewOf(sessions: Sessions, s: SessionRecord): Promise<SessionView> {
  const [seen, cookies] = await Promise.all([sessions.lastSeen(s.id), sessions.cookieCount(s.id)]);
  const { userId: _user, createdAt, expiresAt, ...rest } = s;
  return {
    ...rest,
    createdAt: new Date(createdAt).toISOString(),
    expiresAt: new Date(expiresAt).toISOString(),
    lastSeen: seen === null ? null : new Date(seen.at).toISOString(),
    identifiedBy: seen?.by ?? null,
    cookies,
  };
}

/** RevokeTarget is what one revoke call ends: exactly one of a session, a user's or a location's sessions. */
export type RevokeTarget = { readonly session: string } | { readonly user: string } | { readonly location: string };

/** parseRevokeTarget checks a revoke body names exactly one target, as a bounded string. */
export function parseRevokeTarget(body: Record<string, unknown>): RevokeTarget {
  const keys = (['session', 'user', 'location'] as const).filter((k) => body[k] !== undefined);
  const extra = Object.keys(body).filter((k) => k !== 'session' && k !== 'user' && k !== 'location');
  if (extra.length > 0) throw new HttpError(400, 'bad_request', `Unknown field "${extra[0]!.slice(0, 64)}": give one of session, user, location.`);
  if (keys.length !== 1) throw new HttpError(400, 'bad_request', 'Give exactly one of session, user, location.');
  const key = keys[0]!;
  const v = body[key];
  if (typeof v !== 'string' || v === '' || v.length > 256) throw new HttpError(400, 'bad_request', `${key} must be a non-empty string of at most 256 characters.`);
  return { [key]: v } as RevokeTarget;
}

/** revoke ends what the target names on every node; returns how many sessions ended. */
export async function revoke(deps: { sessions: Sessions; directory: Directory }, rt: Runtime, target: RevokeTarget): Promise<number> {
  if ('session' in target) return (await deps.sessions.revoke(target.session)) ? 1 : 0;
  if ('user' in target) return revokeLogin(deps, rt, target.user);
  const loc = target.location.toLowerCase();
  if (!rt.config.locations.some((l) => l.name.toLowerCase() === loc)) throw new HttpError(404, 'unknown_location', `No location is named "${target.location.slice(0, 64)}".`);
  // Collect first, then revoke: revoking while scanning would shift the pages under the scan.
  const ids: string[] = [];
  for await (const s of deps.sessions.scan()) if (s.location.toLowerCase() === loc) ids.push(s.id);
  let n = 0;
  for (const id of ids) if (await deps.sessions.revoke(id)) n++;
  return n;
}
