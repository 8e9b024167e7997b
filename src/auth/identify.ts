/**
 * identify: who is behind one request, from the domain cookie or the IP surrogate.
 *
 *   request -> our cookie on this host? -> dck:<cookie> -> sess:<id>      (identified by cookie)
 *           -> location surrogate on?   -> surr:<loc>|<ip> -> sess:<id>  (identified by surrogate)
 *
 * `peek` answers from memory only and allocates next to nothing, so an identified user on an LRU hit
 * costs a few map lookups; `resolve` asks the store when memory does not know, and fills memory.
 * Our cookie and token are removed from everything that goes upstream (stripOwnCookie, splitToken).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SurrogateConfig } from '../config/schema.js';
import type { LocationMatch } from '../proxy/locate.js';
import type { SessionRecord, Sessions, SurrogateMapping } from '../sessions/session.js';

/** COOKIE_NAME is Tollgate's cookie, on the gateway host and (host-only) on every site a user visits. */
export const COOKIE_NAME = 'tollgate_sid';
/** TOKEN_PARAM carries the gateway's one-time token to a site, where the proxy swaps it for a cookie. */
export const TOKEN_PARAM = '_tollgate_token';

/** IdentifiedBy is how a request was attributed, as the status page and access log show it. */
export type IdentifiedBy = 'cookie' | 'surrogate';

/** Identity is a request's user. */
export interface Identity {
  readonly session: SessionRecord;
  readonly by: IdentifiedBy;
}

/** Subject is what identification needs to know about a request. */
export interface Subject {
  readonly host: string;
  readonly clientIp: string;
  readonly match: LocationMatch | null;
  readonly protocol: 'HTTP' | 'TUNNEL' | 'WS';
}

const COOKIE_PREFIX = `${COOKIE_NAME}=`;

/**
 * readOwnCookies lists our cookie's values in a Cookie header, in order; empty when absent. Usually
 * there is one; another can be planted by a sibling domain's script, so each is tried.
 */
export function readOwnCookies(header: string | undefined): readonly string[] {
  return readCookies(header, COOKIE_PREFIX);
}

/** setCookie builds a host-only, HttpOnly, SameSite=Lax cookie; maxAgeMs null makes it a browser-session cookie, 0 deletes it. */
export function setCookie(name: string, value: string, maxAgeMs: number | null): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax${maxAgeMs === null ? '' : `; Max-Age=${Math.floor(maxAgeMs / 1000)}`}`;
}

/** readCookie is the first value of a named cookie, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  return readCookies(header, `${name}=`)[0] ?? null;
}

const NONE: readonly string[] = Object.freeze([]);

function readCookies(header: string | undefined, prefix: string): readonly string[] {
  let i = header === undefined ? -1 : header.indexOf(prefix);
  if (i < 0) return NONE;
  header = header!;
  const out: string[] = [];
  while (i >= 0) {
    if (i === 0 || header.charCodeAt(i - 1) === 32 /* ' ' */ || header.charCodeAt(i - 1) === 59 /* ';' */) {
      const start = i + prefix.length;
      const end = header.indexOf(';', start);
      const v = (end < 0 ? header.slice(start) : header.slice(start, end)).trim();
      if (v !== '' && out.length < 4) out.push(v);
    }
    i = header.indexOf(prefix, i + 1);
  }
  return out;
}

/**
 * stripOwnSetCookie drops any Set-Cookie for our cookie's name from an origin's response headers.
 * One Set-Cookie may come as a string (some clients give a lone header that way), several as an array.
 */
export function stripOwnSetCookie(headers: { 'set-cookie'?: string | string[] | undefined }): void {
  const sc = headers['set-cookie'];
  if (sc === undefined) return;
  const ours = (c: string) => c.trimStart().startsWith(COOKIE_PREFIX);
  if (typeof sc === 'string') {
    if (ours(sc)) delete headers['set-cookie'];
    return;
  }
  if (sc.some(ours)) headers['set-cookie'] = sc.filter((c) => !ours(c));
}

/** stripOwnCookie removes our cookie from a request's Cookie header in place, so it never goes upstream. */
export function stripOwnCookie(headers: IncomingHttpHeaders): void {
  const h = headers.cookie;
  if (h === undefined || !h.includes(COOKIE_PREFIX)) return;
  const kept = h
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c !== '' && !c.startsWith(COOKIE_PREFIX));
  if (kept.length === 0) delete headers.cookie;
  else headers.cookie = kept.join('; ');
}

/**
 * splitToken finds our one-time token in a path's query. It returns the token and the path without
 * it (other parameters keep their order), or null when the path carries none.
 */
export function splitToken(path: string): { token: string; clean: string } | null {
  const q = path.indexOf('?');
  if (q < 0 || !path.includes(TOKEN_PARAM, q)) return null;
  let token: string | null = null;
  const kept: string[] = [];
  for (const part of path.slice(q + 1).split('&')) {
    if (part.startsWith(`${TOKEN_PARAM}=`)) token ??= part.slice(TOKEN_PARAM.length + 1);
    else if (part !== '') kept.push(part);
  }
  if (token === null) return null;
  return { token, clean: kept.length === 0 ? path.slice(0, q) : `${path.slice(0, q)}?${kept.join('&')}` };
}

/** withToken appends our token to an absolute URL. */
export function withToken(url: string, token: string): string {
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  return `${base}${base.includes('?') ? '&' : '?'}${TOKEN_PARAM}=${token}`;
}

const TOKEN_IN_URL = new RegExp(`([?&]${TOKEN_PARAM}=)[^&#]*`, 'g');
const GATEWAY_TOKEN = /([?&]t=)[^&#]*/g;

/**
 * redactTokens hides our one-time tokens in a URL before it is logged: the site token everywhere,
 * and the gateway's `t=` on the gateway host. A used token is worthless, but logs never carry secrets.
 */
export function redactTokens(url: string, onGateway: boolean): string {
  let out = url.includes(TOKEN_PARAM) ? url.replace(TOKEN_IN_URL, '$1[redacted]') : url;
  if (onGateway && out.includes('t=')) out = out.replace(GATEWAY_TOKEN, '$1[redacted]');
  return out;
}

/** isBrowser: browsers all send a User-Agent starting with Mozilla/. */
export function isBrowser(headers: IncomingHttpHeaders): boolean {
  const ua = headers['user-agent'];
  return ua !== undefined && ua.startsWith('Mozilla/');
}

/**
 * isNavigation tells whether a request is a browser loading a page, the only kind that may be sent
 * to a login page. XHR/fetch, images, scripts, other methods and non-browsers get a plain refusal.
 */
export function isNavigation(method: string, headers: IncomingHttpHeaders): boolean {
  if ((method !== 'GET' && method !== 'HEAD') || !isBrowser(headers)) return false;
  if (headers['x-requested-with'] !== undefined) return false;
  const mode = headers['sec-fetch-mode'];
  if (mode !== undefined && mode !== 'navigate') return false;
  const dest = headers['sec-fetch-dest'];
  return dest === undefined || dest === 'document';
}

/** isFrameLoad: a browser loading a page inside a frame, which cannot take a sign-in round trip. */
export function isFrameLoad(method: string, headers: IncomingHttpHeaders): boolean {
  const dest = headers['sec-fetch-dest'];
  return (method === 'GET' || method === 'HEAD') && (dest === 'iframe' || dest === 'frame') && isBrowser(headers);
}

/** TOUCH_EVERY_MS: a surrogate in use has its idle timer restarted at most this often per node. */
const TOUCH_EVERY_MS = 60_000;

/** SEEN_EVERY_MS: a session in use has its last-seen time written at most this often per node. */
const SEEN_EVERY_MS = 60_000;

/**
 * OncePer says whether a key is due again: at most once per `everyMs`, for up to `keys` keys at a
 * time. It is asked on every identified request, so it is a plain Map (a lookup costs a small
 * fraction of an LRU's get, which also reorders its list). At the cap, the keys not seen for
 * everyMs go first: they are due anyway, so forgetting them changes no answer. When that frees less
 * than a quarter of the cap, the whole map is dropped instead (so the walk stays rare), and each of
 * those keys is then due once early, as an LRU evicting them would make it; the answers only pace
 * background writes.
 */
export class OncePer {
  readonly #last = new Map<string, number>();

  constructor(
    private readonly everyMs: number,
    private readonly keys: number,
  ) {}

  /** due records `t` for key and answers true when the key's last time is at least everyMs before t. */
  due(key: string, t: number): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && t - last < this.everyMs) return false;
    if (last === undefined && this.#last.size >= this.keys) this.#prune(t);
    this.#last.set(key, t);
    return true;
  }

  get size(): number {
    return this.#last.size;
  }

  /** #prune frees at least a quarter of the cap, so a walk of the map comes at most once per keys/4 new keys. */
  #prune(t: number): void {
    for (const [k, last] of this.#last) if (t - last >= this.everyMs) this.#last.delete(k);
    if (this.#last.size > this.keys * 0.75) this.#last.clear();
  }
}

/** Identifier attributes requests to sessions. */
export class Identifier {
  private readonly touched = new OncePer(TOUCH_EVERY_MS, 100_000);
  private readonly seen = new OncePer(SEEN_EVERY_MS, 100_000);

  constructor(
    readonly sessions: Sessions,
    private readonly onError: (err: Error) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * peek identifies from memory only: an Identity, null when memory knows there is none, or
   * undefined when the store must be asked (call resolve).
   */
  peek(s: Subject, cookies: readonly string[], browser: boolean, navigation: boolean): Identity | null | undefined {
    let unsure = false;
    for (let i = 0; i < cookies.length; i++) {
      const id = this.sessions.peekCookie(cookies[i]!, s.host);
      if (id === undefined) unsure = true;
      else if (id !== null) {
        const rec = this.sessions.peek(id);
        if (rec === undefined) unsure = true;
        else if (rec !== null) return this.identified(rec, 'cookie');
      }
    }
    const policy = surrogatePolicy(s, browser);
    if (policy !== null) {
      const m = this.sessions.peekSurrogate(s.match!.location.name, s.clientIp);
      if (m === undefined) return undefined;
      if (m !== null && this.fresh(m, policy, browser, navigation)) {
        const rec = this.sessions.peek(m.sessionId);
        if (rec === undefined) return undefined;
        if (rec !== null) {
          this.touch(s, m, policy);
          return this.identified(rec, 'surrogate');
        }
      }
    }
    return unsure ? undefined : null;
  }

  /** resolve identifies with the store's help, filling memory for the next request. */
  async resolve(s: Subject, cookies: readonly string[], browser: boolean, navigation: boolean): Promise<Identity | null> {
    for (const cookie of cookies) {
      const id = await this.sessions.cookieSession(cookie, s.host);
      const rec = id === null ? null : await this.sessions.get(id);
      if (rec !== null) return this.identified(rec, 'cookie');
    }
    const policy = surrogatePolicy(s, browser);
    if (policy !== null) {
      const m = await this.sessions.surrogate(s.match!.location.name, s.clientIp, policy);
      if (m !== null && this.fresh(m, policy, browser, navigation)) {
        const rec = await this.sessions.get(m.sessionId);
        if (rec !== null) {
          this.touch(s, m, policy);
          return this.identified(rec, 'surrogate');
        }
      }
    }
    return null;
  }

  /** fresh: a browser page load past the refresh time goes back through the gateway to prove its cookie. */
  private fresh(m: SurrogateMapping, policy: SurrogateConfig, browser: boolean, navigation: boolean): boolean {
    return !(browser && navigation && this.now() - m.validatedAt > policy.refreshMs);
  }

  /** identified returns the identity and, at most once a minute per session, records it as last seen. */
  private identified(session: SessionRecord, by: IdentifiedBy): Identity {
    const t = this.now();
    if (this.seen.due(session.id, t)) {
      this.sessions.markSeen(session, by, t).catch((err: Error) => this.onError(err));
    }
    return { session, by };
  }

  /** touch restarts the surrogate's idle timer in the background, at most once a minute per IP. */
  private touch(s: Subject, m: SurrogateMapping, policy: SurrogateConfig): void {
    const key = `${s.match!.location.name}|${s.clientIp}`;
    const t = this.now();
    if (!this.touched.due(key, t)) return;
    this.sessions.touchSurrogate(s.match!.location.name, s.clientIp, m, policy).catch((err: Error) => this.onError(err));
  }
}

/**
 * surrogatePolicy: the location's surrogate policy when it may identify this request. Tunnels,
 * WebSockets and non-browsers always may; browsers only with "enforce surrogate IP for known browsers".
 */
function surrogatePolicy(s: Subject, browser: boolean): SurrogateConfig | null {
  const policy = s.match?.location.surrogate;
  if (policy === undefined || !policy.enabled) return null;
  if (s.protocol === 'HTTP' && browser && !policy.enforceForKnownBrowsers) return null;
  return policy;
}
