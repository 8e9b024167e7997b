/**
 * session: user sessions and their indexes, on any Store.
 *
 *   sess:<id>                 the record (JSON), expiring with the session
 *   {u:<userId>}:sessions     user → session ids (for revoke-by-user)
 *   {s:<id>}:cookies          session → domain-cookie ids (so revocation reaches every cookie)
 *   {all}:sessions            every session id (for "re-authenticate everyone")
 *   dck:<cookie>              domain cookie → "<session id> <host>": valid on that host only
 *   surr:<location>|<ip>      IP surrogate → "<session id> <validated at ms>", the idle timeout as TTL
 *   ott:<token>               one-time token → {session, clientIp, url}, consumed once
 *   seen:<id>                 "<ms> <cookie|surrogate>": when and how a node last identified the session (at most once a minute)
 *
 * Reads on the hot path go through TieredStore.peek, so a known session is answered from memory;
 * every delete publishes an invalidation, so a revocation reaches every node's LRU at once.
 * Writes are ordered so a crash between them leaves only harmless leftovers: the record is written
 * before any index points at it, and revocation removes the record first.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Store } from './store.js';
import type { TieredStore } from './tiered.js';

/** AuthMethod is how the session was established. */
export type AuthMethod = 'saml';

/** SessionRecord is one signed-in user at one client. */
export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  readonly loginName: string;
  readonly displayName: string;
  readonly department: string;
  readonly groups: readonly string[];
  readonly idp: string;
  readonly location: string;
  readonly clientIp: string;
  readonly authMethod: AuthMethod;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/**
 * TokenPurpose keeps the two kinds of one-time token apart: `gateway` (the ACS hands the browser to
 * the gateway to plant the gateway cookie) and `site` (the gateway hands it to a site's host).
 */
export type TokenPurpose = 'gateway' | 'site';

/** OneTimeToken is what a minted token stands for. */
export interface OneTimeToken {
  readonly sessionId: string;
  readonly clientIp: string;
  readonly url: string;
  readonly purpose: TokenPurpose;
  /** nonce ties a gateway token to the browser that started the sign-in (its login cookie). */
  readonly nonce?: string;
}

/** SurrogateMapping is where an IP surrogate points, and when a browser last proved it by cookie. */
export interface SurrogateMapping {
  readonly sessionId: string;
  readonly validatedAt: number;
}

/** SurrogatePolicy is one location's IP-surrogate settings. */
export interface SurrogatePolicy {
  readonly enabled: boolean;
  readonly idleMs: number;
}

/** Remaps within REMAP_WINDOW_MS beyond REMAP_LIMIT suspend an IP's surrogate (as ZIA does). */
const REMAP_LIMIT = 3;
const REMAP_WINDOW_MS = 60_000;
const REMAP_SUSPEND_MS = 5 * 60_000;
const TOKEN_TTL_MS = 60_000;

/** newId returns 32 random bytes as base64url: unguessable session, cookie and token ids. */
export function newId(): string {
  return randomBytes(32).toString('base64url');
}

const K = {
  rec: (id: string) => `sess:${id}`,
  user: (userId: string) => `{u:${userId}}:sessions`,
  all: '{all}:sessions',
  cookies: (id: string) => `{s:${id}}:cookies`,
  cookie: (c: string) => `dck:${c}`,
  surr: (loc: string, ip: string) => `surr:${loc}|${ip}`,
  remaps: (loc: string, ip: string) => `surrmap:${loc}|${ip}`,
  suspended: (loc: string, ip: string) => `surrsusp:${loc}|${ip}`,
  token: (t: string) => `ott:${t}`,
  seen: (id: string) => `seen:${id}`,
};

/** Sessions manages session records and indexes; the store is usually a TieredStore. */
export class Sessions {
  /** Parsed records by id, reused while the store hands back the same raw string (no JSON.parse per request). */
  private readonly parsed = new LRUCache<string, { raw: string; rec: SessionRecord }>({ max: 10_000 });

  constructor(
    private readonly store: Store & Partial<Pick<TieredStore, 'peek'>>,
    private readonly now: () => number = Date.now,
  ) {}

  /** create writes a session and its indexes; the caller then maps a surrogate or plants cookies. */
  async create(fields: Omit<SessionRecord, 'id' | 'createdAt' | 'expiresAt'>, lifetimeMs: number): Promise<SessionRecord> {
    const t = this.now();
    const rec: SessionRecord = { ...fields, id: newId(), createdAt: t, expiresAt: t + lifetimeMs };
    await this.store.set(K.rec(rec.id), JSON.stringify(rec), lifetimeMs);
    await this.store.sadd(K.user(rec.userId), rec.id);
    await this.store.sadd(K.all, rec.id);
    return rec;
  }

  /** update rewrites a live session's user fields (department, groups, names) on every node. */
  async update(id: string, change: Partial<Pick<SessionRecord, 'loginName' | 'displayName' | 'department' | 'groups'>>): Promise<boolean> {
    const rec = await this.get(id);
    if (rec === null) return false;
    const next: SessionRecord = { ...rec, ...change };
    await this.store.set(K.rec(id), JSON.stringify(next), Math.max(1, rec.expiresAt - this.now()));
    return true;
  }

  /** get reads a session (memory first); null when absent or expired. */
  async get(id: string): Promise<SessionRecord | null> {
    return this.parse(id, await this.store.get(K.rec(id)));
  }

  /**
   * peek answers from memory only: the session, null when known absent, undefined when this node
   * must ask the store (call `get`).
   */
  peek(id: string): SessionRecord | null | undefined {
    if (this.store.peek === undefined) return undefined;
    const raw = this.store.peek(K.rec(id));
    return raw === undefined ? undefined : this.parse(id, raw);
  }

  /** mintToken creates a one-time token for a session, bound to the client IP and a purpose, valid ~60 s. */
  async mintToken(sessionId: string, clientIp: string, url: string, purpose: TokenPurpose, nonce?: string): Promise<string> {
    const token = newId();
    const body: OneTimeToken = { sessionId, clientIp, url, purpose, ...(nonce !== undefined ? { nonce } : {}) };
    await this.store.set(K.token(token), JSON.stringify(body), TOKEN_TTL_MS);
    return token;
  }

  /** peekToken reads a token without using it up; null when unknown or expired. */
  async peekToken(token: string): Promise<OneTimeToken | null> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
    const raw = await this.store.get(K.token(token));
    return raw === null ? null : (JSON.parse(raw) as OneTimeToken);
  }

  /**
   * redeemToken consumes a token once; null when unknown, used, expired, of another purpose or from
   * another IP. A wrong client does not use the token up, so it cannot burn the rightful owner's.
   */
  async redeemToken(token: string, clientIp: string, purpose: TokenPurpose): Promise<OneTimeToken | null> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
    const fits = (raw: string | null): OneTimeToken | null => {
      if (raw === null) return null;
      const t = JSON.parse(raw) as OneTimeToken;
      return t.clientIp === clientIp && t.purpose === purpose ? t : null;
    };
    if (fits(await this.store.get(K.token(token))) === null) return null;
    return fits(await this.store.consume(K.token(token)));
  }

  /**
   * plantCookie creates a cookie id for a session that is valid on one host only, for ttlMs (cut to
   * the session's own end). Returns the id and its lifetime, or null when the session has ended.
   */
  async plantCookie(sessionId: string, host: string, ttlMs: number): Promise<{ cookie: string; ttlMs: number } | null> {
    const rec = await this.get(sessionId);
    if (rec === null) return null;
    const cookie = newId();
    const ttl = Math.max(1, Math.min(ttlMs, rec.expiresAt - this.now()));
    await this.store.sadd(K.cookies(sessionId), cookie);
    await this.store.set(K.cookie(cookie), `${sessionId} ${host}`, ttl);
    return { cookie, ttlMs: ttl };
  }

  /** cookieSession maps a cookie presented on `host` to its session id (memory first). */
  async cookieSession(cookie: string, host: string): Promise<string | null> {
    return boundTo(await this.store.get(K.cookie(cookie)), host);
  }

  /** peekCookie is cookieSession from memory only (undefined: ask the store). */
  peekCookie(cookie: string, host: string): string | null | undefined {
    const raw = this.store.peek?.(K.cookie(cookie));
    return raw === undefined ? undefined : boundTo(raw, host);
  }

  /**
   * mapSurrogate points (location, ip) at a session. Re-mapping an IP to another user more than
   * three times a minute suspends the surrogate for that IP for five minutes; returns false then.
   */
  async mapSurrogate(location: string, ip: string, sessionId: string, policy: SurrogatePolicy): Promise<boolean> {
    if (!policy.enabled) return false;
    if ((await this.store.get(K.suspended(location, ip))) !== null) return false;
    const current = mapping(await this.store.get(K.surr(location, ip)));
    if (current !== null && current.sessionId !== sessionId) {
      const prev = await this.get(current.sessionId);
      const next = await this.get(sessionId);
      if (prev !== null && next !== null && prev.userId !== next.userId) {
        const n = await this.store.incr(K.remaps(location, ip), REMAP_WINDOW_MS);
        if (n > REMAP_LIMIT) {
          await this.store.set(K.suspended(location, ip), '1', REMAP_SUSPEND_MS);
          await this.store.del(K.surr(location, ip));
          return false;
        }
      }
    }
    await this.store.set(K.surr(location, ip), `${sessionId} ${this.now()}`, policy.idleMs);
    return true;
  }

  /** surrogate reads where an IP is mapped; a mapping to a dead session is dropped. */
  async surrogate(location: string, ip: string, policy: SurrogatePolicy): Promise<SurrogateMapping | null> {
    if (!policy.enabled) return null;
    const m = mapping(await this.store.get(K.surr(location, ip)));
    if (m === null) return null;
    if ((await this.get(m.sessionId)) === null) {
      await this.store.del(K.surr(location, ip));
      return null;
    }
    return m;
  }

  /** peekSurrogate is `surrogate` from memory only (undefined: ask the store). */
  peekSurrogate(location: string, ip: string): SurrogateMapping | null | undefined {
    const raw = this.store.peek?.(K.surr(location, ip));
    return raw === undefined ? undefined : mapping(raw);
  }

  /** touchSurrogate restarts the idle timer of a mapping (call it off the hot path, and not per request). */
  async touchSurrogate(location: string, ip: string, m: SurrogateMapping, policy: SurrogatePolicy): Promise<void> {
    if (policy.enabled) await this.store.set(K.surr(location, ip), `${m.sessionId} ${m.validatedAt}`, policy.idleMs);
  }

  /** revoke ends one session: its record, its cookies and its surrogate. Returns whether it existed. */
  async revoke(id: string): Promise<boolean> {
    const rec = await this.get(id);
    // The record goes first: with it gone, no index can resolve to a live session any more.
    await this.store.del(K.rec(id));
    this.parsed.delete(id);
    const cookies = await this.store.smembers(K.cookies(id));
    if (cookies.length > 0) await this.store.del(...cookies.map(K.cookie));
    await this.store.del(K.cookies(id));
    await this.store.srem(K.all, id);
    // A separate call: the two keys may live in different Redis Cluster slots.
    await this.store.del(K.seen(id));
    if (rec !== null) {
      await this.store.srem(K.user(rec.userId), id);
      const surr = K.surr(rec.location, rec.clientIp);
      if (mapping(await this.store.get(surr))?.sessionId === id) await this.store.del(surr);
    }
    return rec !== null;
  }

  /** markSeen records when and how a session was last identified (the admin's "last seen"), for its lifetime. */
  async markSeen(rec: SessionRecord, by: string, at: number): Promise<void> {
    const left = rec.expiresAt - at;
    if (left > 0) await this.store.set(K.seen(rec.id), `${at} ${by}`, left);
  }

  /** lastSeen reads what markSeen wrote; null when no node has identified the session yet. */
  async lastSeen(id: string): Promise<{ at: number; by: string } | null> {
    const raw = await this.store.get(K.seen(id));
    if (raw === null) return null;
    const sp = raw.indexOf(' ');
    return { at: Number(raw.slice(0, sp)) || 0, by: raw.slice(sp + 1) };
  }

  /** cookieCount is how many host cookies a session has planted. */
  cookieCount(id: string): Promise<number> {
    return this.store.scard(K.cookies(id));
  }

  /** scan yields every live session, in id order, a batch at a time (the admin's session list). */
  async *scan(batch = 500): AsyncGenerator<SessionRecord> {
    for (let offset = 0; ; offset += batch) {
      const ids = await this.store.smembers(K.all, { offset, limit: batch });
      for (const id of ids) {
        const rec = await this.get(id);
        if (rec !== null) yield rec;
      }
      if (ids.length < batch) return;
    }
  }

  /** revokeUser ends every session of a user on every node; returns how many. */
  async revokeUser(userId: string): Promise<number> {
    const ids = await this.store.smembers(K.user(userId));
    let n = 0;
    for (const id of ids) if (await this.revoke(id)) n++;
    await this.store.del(K.user(userId));
    return n;
  }

  /** revokeAll ends every session (force re-authentication for everyone); returns how many were live. */
  async revokeAll(): Promise<number> {
    let n = 0;
    for (;;) {
      const ids = await this.store.smembers(K.all, { offset: 0, limit: 500 });
      if (ids.length === 0) return n;
      for (const id of ids) {
        if (await this.revoke(id)) n++;
        else await this.store.srem(K.all, id);
      }
    }
  }

  /** sessionsOf lists a user's live session ids. */
  async sessionsOf(userId: string): Promise<string[]> {
    return this.store.smembers(K.user(userId));
  }

  private parse(id: string, raw: string | null): SessionRecord | null {
    if (raw === null) return null;
    const hit = this.parsed.get(id);
    let rec: SessionRecord;
    if (hit !== undefined && hit.raw === raw) rec = hit.rec;
    else {
      rec = Object.freeze(JSON.parse(raw) as SessionRecord);
      this.parsed.set(id, { raw, rec });
    }
    return rec.expiresAt > this.now() ? rec : null;
  }
}

/** boundTo reads a cookie record: the session id when the cookie belongs to `host`. */
function boundTo(raw: string | null, host: string): string | null {
  if (raw === null) return null;
  const sp = raw.indexOf(' ');
  if (sp < 0 || raw.length - sp - 1 !== host.length || !raw.endsWith(host)) return null;
  return raw.slice(0, sp);
}

function mapping(raw: string | null): SurrogateMapping | null {
  if (raw === null) return null;
  const sp = raw.indexOf(' ');
  if (sp < 0) return { sessionId: raw, validatedAt: 0 };
  return { sessionId: raw.slice(0, sp), validatedAt: Number(raw.slice(sp + 1)) || 0 };
}
