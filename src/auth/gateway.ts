/**
 * gateway: the sign-in flow, as ZIA runs it, spread over the cloud's own hosts.
 *
 *   proxy: unidentified page load   --307--> gateway/login?r=<id>      (original URL kept server-side under <id>)
 *   gateway/login: signed in here?  --307--> original URL + one-time token
 *                  else pick IdP    --302--> IdP (AuthnRequest, HTTP-Redirect, RelayState <id>)
 *   IdP --POST--> login/sfc_sso (ACS): validate, provision, session --303--> gateway/complete?t=<token>
 *   gateway/complete: plant the gateway cookie  --307--> original URL + one-time token
 *   proxy: token on any host: plant a host-only cookie --307--> clean URL
 *
 * Nothing the browser sends is ever used as a redirect target: the original URL lives in the store,
 * RelayState is only a key, and clstart's redrurl must be one of our hosts or on the allow-list.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Directory } from '../directory/directory.js';
import { escapeHtml, HttpError } from '../http/errors.js';
import { Router, sendBody, sendRedirect } from '../http/router.js';
import type { LocationMatch } from '../proxy/locate.js';
import type { Transaction } from '../proxy/pipeline.js';
import type { ProxyAuth, Redirect } from '../proxy/server.js';
import { isOwnHost, type Runtime, type RuntimeRef } from '../runtime.js';
import { readBody } from '../scim/body.js';
import { ScimError } from '../scim/errors.js';
import { newId, type SessionRecord, type Sessions } from '../sessions/session.js';
import type { Store } from '../sessions/store.js';
import type { IdpRuntime } from './idps.js';
import { COOKIE_NAME, readCookie, setCookie, withToken, type Identifier } from './identify.js';
import { loginFormHtml, page } from './pages.js';
import { provisionLogin } from './provision.js';
import { SamlError } from './saml.js';

/** AuthCtx is one request's view, as the control-plane app passes it. */
export interface AuthCtx {
  readonly rt: Runtime;
  readonly tx: Transaction | null;
  readonly peerIp: string;
}

/** PendingLogin is a sign-in in progress, kept server-side under a random id, for one client. */
interface PendingLogin {
  readonly url: string;
  readonly clientIp: string;
  /** The IdP, once chosen (clstart chooses it up front). */
  readonly idp?: string;
  /** The browser's login nonce (its LOGIN_COOKIE), set when it leaves for the IdP. */
  readonly nonce?: string;
}

/** GatewayDeps is what the sign-in flow is given by the composition root. */
export interface GatewayDeps {
  readonly runtime: RuntimeRef;
  readonly store: Store;
  readonly sessions: Sessions;
  readonly identifier: Identifier;
  readonly directory: Directory;
  readonly log: Logger;
  readonly onLogin?: (outcome: string) => void;
}

/** The largest ACS or form post accepted: a signed response with many groups is tens of KiB. */
const MAX_FORM_BYTES = 1024 * 1024;
const FORM_TIMEOUT_MS = 15_000;
const DAY_MS = 24 * 3600_000;
/** A stored original URL longer than this is replaced by its site's front page. */
const MAX_URL_CHARS = 4096;
/**
 * Sign-ins one client IP may start per minute; beyond it, 429 (the store is not a free-for-all). A
 * sign-in counts once; going to the IdP again with the same sign-in link counts again.
 */
const SIGN_INS_PER_MINUTE = 300;
/**
 * LOGIN_COOKIE ties a sign-in to the browser that started it: set on the gateway host when the
 * browser leaves for the IdP, checked when it comes back to plant the gateway cookie. Someone who
 * posts their own SAML response from a victim's browser cannot get their session planted there.
 */
export const LOGIN_COOKIE = 'tollgate_login';

const pendingKey = (id: string) => `login:${id}`;
const rateKey = (ip: string) => `loginrate:${ip}`;

/** sessionLifetimeMs is how long a sign-in lasts, from ZIA's authentication frequency. */
export function sessionLifetimeMs(rt: Runtime): number {
  const a = rt.config.authentication;
  switch (a.frequency) {
    case 'once':
      return 365 * DAY_MS;
    case 'daily':
      return DAY_MS;
    case 'perSession':
      return 7 * DAY_MS; // the browser drops the cookie when it closes
    case 'customDays':
      return a.customDays * DAY_MS;
  }
}

/** csrfToken is the logout form's token: derived from the session id, which only our pages know. */
export function csrfToken(sessionId: string): string {
  return createHash('sha256').update(`tollgate-logout\0${sessionId}`).digest('base64url').slice(0, 32);
}

/** cookieHeader builds our host-only session cookie; per-session frequency leaves out Max-Age. */
function cookieHeader(rt: Runtime, value: string, ttlMs: number): string {
  return setCookie(COOKIE_NAME, value, rt.config.authentication.frequency === 'perSession' ? null : Math.max(1000, ttlMs));
}

/** CLEAR_COOKIE removes our session cookie from the host that answers. */
export const CLEAR_COOKIE = setCookie(COOKIE_NAME, '', 0);

/** Gateway is the sign-in flow: the proxy's side (ProxyAuth) and the own hosts' routes. */
export class Gateway implements ProxyAuth {
  readonly identifier: Identifier;
  /** Routes of gateway.<cloud>. */
  readonly gatewayRoutes: Router<AuthCtx>;
  /** Routes of login.<cloud> (ACS and clstart); the ACS also answers on the control listener. */
  readonly loginRoutes: Router<AuthCtx>;

  constructor(private readonly deps: GatewayDeps) {
    this.identifier = deps.identifier;
    this.gatewayRoutes = new Router<AuthCtx>()
      .on('GET', '/', (req, res, ctx) => this.start(req, res, ctx, `http://ip.${ctx.rt.cloud}/`))
      .on('GET', '/login', (req, res, ctx) => this.resume(req, res, ctx))
      .on('POST', '/login', (req, res, ctx) => this.pickByName(req, res, ctx))
      .on('GET', '/complete', (req, res, ctx) => this.complete(req, res, ctx))
      .on('GET', '/probe', (req, res, ctx) => this.probe(req, res, ctx));
    this.loginRoutes = new Router<AuthCtx>()
      .on('POST', '/sfc_sso', (req, res, ctx) => this.acs(req, res, ctx))
      .on('GET', '/clstart', (req, res, ctx) => this.clstart(req, res, ctx));
  }

  // ---- the proxy's side ----

  async swapToken(tx: Transaction, token: string, cleanUrl: string): Promise<Redirect | HttpError> {
    const t = await this.deps.sessions.redeemToken(token, tx.clientIp, 'site');
    if (t === null) return new HttpError(403, 'token_invalid', `This sign-in link has expired or was already used. Open ${cleanUrl} again.`);
    if (hostOf(t.url) !== tx.host) return new HttpError(403, 'token_wrong_host', 'This sign-in link was made for another site.');
    const planted = await this.deps.sessions.plantCookie(t.sessionId, tx.host, tx.rt.config.authentication.cookieRotateMs);
    if (planted === null) return new HttpError(403, 'session_ended', `Your session has ended. Open ${cleanUrl} again to sign in.`);
    return { location: cleanUrl, setCookie: cookieHeader(tx.rt, planted.cookie, planted.ttlMs) };
  }

  async loginRedirect(tx: Transaction): Promise<Redirect> {
    // A URL too long to keep is cut back to its site's front page (http, or https decrypted from an inspected tunnel).
    const url = tx.url.length <= MAX_URL_CHARS ? tx.url : `${new URL(tx.url).origin}/`;
    const id = await this.savePending(tx.rt, { url, clientIp: tx.clientIp });
    return { location: `${tx.rt.gatewayOrigin}/login?r=${id}` };
  }

  // ---- gateway.<cloud> ----

  /** start begins a sign-in that lands on `url` (the gateway's own front page). */
  private async start(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx, url: string): Promise<void> {
    const id = await this.savePending(ctx.rt, { url, clientIp: clientIp(ctx) });
    await this.proceed(req, res, ctx, id, { url, clientIp: clientIp(ctx) });
  }

  /** resume continues the sign-in the proxy started for one page load. */
  private async resume(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx): Promise<void> {
    const id = query(req).get('r') ?? '';
    const pending = await this.loadPending(id, ctx);
    await this.proceed(req, res, ctx, id, pending);
  }

  /**
   * proceed: a browser with a live gateway session goes straight back with a one-time token (the
   * domain-cookie step); otherwise the location's IdP is used, or the user is asked for their name.
   */
  private async proceed(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx, id: string, pending: PendingLogin): Promise<void> {
    const who = ctx.tx?.identity;
    if (who?.by === 'cookie') {
      await this.deps.store.del(pendingKey(id));
      await this.remapSurrogate(ctx, who.session);
      return this.backTo(res, ctx, who.session, pending.url);
    }
    const preset = pending.idp !== undefined ? ctx.rt.idps.get(pending.idp) : undefined;
    if (preset !== undefined) return this.toIdp(req, res, ctx, id, pending, preset);
    const choice = idpFor(ctx.rt, locationOf(ctx));
    if (choice === null) throw new HttpError(403, 'auth_not_configured', 'No identity provider is configured.');
    if (choice === 'ask') return sendBody(req, res, 200, 'text/html; charset=utf-8', loginFormHtml(ctx.rt.cloud, id), noStore());
    await this.toIdp(req, res, ctx, id, pending, choice);
  }

  /** pickByName picks the IdP by the domain of the typed login name. */
  private async pickByName(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx): Promise<void> {
    const form = await readForm(req);
    const id = form.get('r') ?? '';
    const pending = await this.loadPending(id, ctx);
    const name = (form.get('username') ?? '').trim();
    const at = name.lastIndexOf('@');
    const domain = at < 0 ? '' : name.slice(at + 1).toLowerCase();
    const idp = idpForDomain(ctx.rt, domain);
    if (idp === null) {
      const msg = `No identity provider serves "${domain || name}". Check your login name.`;
      return sendBody(req, res, 200, 'text/html; charset=utf-8', loginFormHtml(ctx.rt.cloud, id, msg), noStore());
    }
    await this.toIdp(req, res, ctx, id, pending, idp);
  }

  /** complete plants the gateway cookie after the ACS, then takes the browser back to its page. */
  private async complete(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx): Promise<void> {
    const token = query(req).get('t') ?? '';
    const nonce = readCookie(req.headers.cookie, LOGIN_COOKIE);
    // Check the browser before using the token up: a foreign browser must not burn the owner's token.
    const peeked = await this.deps.sessions.peekToken(token);
    if (peeked !== null && peeked.nonce !== undefined && (nonce === null || !sameBytes(nonce, peeked.nonce))) {
      this.deps.log.warn({ clientIp: clientIp(ctx) }, 'sign-in completion from a browser that did not start it');
      throw new HttpError(403, 'login_other_browser', 'This sign-in was started in another browser. Open the page you wanted again to sign in here.');
    }
    const t = await this.deps.sessions.redeemToken(token, clientIp(ctx), 'gateway');
    if (t === null || t.nonce !== peeked?.nonce) throw new HttpError(403, 'token_invalid', 'This sign-in link has expired or was already used. Open the page you wanted again.');
    const session = await this.deps.sessions.get(t.sessionId);
    const planted = session === null ? null : await this.deps.sessions.plantCookie(session.id, ctx.rt.gatewayHost, session.expiresAt - Date.now());
    if (session === null || planted === null) throw new HttpError(403, 'session_ended', 'Your session has ended. Open the page you wanted again.');
    res.setHeader('set-cookie', [cookieHeader(ctx.rt, planted.cookie, planted.ttlMs), setCookie(LOGIN_COOKIE, '', 0)]);
    await this.backTo(res, ctx, session, t.url);
  }

  /**
   * probe lets the status page learn who a browser is without starting a sign-in: with a gateway
   * session it comes back with a token, without one it comes back marked as probed.
   */
  private async probe(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx): Promise<void> {
    // Only the scheme is taken from the request: the way back is always our own status page.
    const scheme = query(req).get('back') === 'https' ? 'https' : 'http';
    const status = `${scheme}://ip.${ctx.rt.cloud}/?probed=1`;
    const who = ctx.tx?.identity;
    if (who?.by === 'cookie') return this.backTo(res, ctx, who.session, status);
    sendRedirect(res, 307, status);
  }

  // ---- login.<cloud> ----

  /** acs is the Assertion Consumer Service: SAML Bindings §3.5 (HTTP-POST), then session and cookie. */
  private async acs(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx): Promise<void> {
    const rt = ctx.rt;
    const form = await readForm(req);
    const samlResponse = form.get('SAMLResponse') ?? '';
    const relayState = form.get('RelayState') ?? '';
    const ip = clientIp(ctx);
    let idpId = '';
    try {
      if (samlResponse === '') throw new SamlError('SAML_MALFORMED', 'the POST carries no SAMLResponse');
      // RelayState is only a key to a sign-in we started; anything else (a URL, say) finds nothing.
      const pending = await this.readPending(relayState);
      if (pending === null || pending.idp === undefined) throw new SamlError('SAML_IN_RESPONSE_TO', `RelayState ${JSON.stringify(relayState.slice(0, 100))} names no sign-in in progress`);
      // Someone else's response posted from this client (login CSRF) does not belong to it.
      if (pending.clientIp !== ip) throw new SamlError('SAML_OTHER_CLIENT', `sign-in started by ${pending.clientIp}, posted by ${ip}`);
      idpId = pending.idp;
      const idp = rt.idps.get(idpId);
      if (idp === undefined) throw new SamlError('SAML_ISSUER', `IdP ${idpId} is no longer configured`);
      const identity = await idp.sp.validate(samlResponse, relayState);
      checkDomain(idp, identity.loginName);
      const user = await provisionLogin(this.deps.directory, `${rt.config.orgId}/${idp.config.id}`, idp.config.provisioning, identity);
      const match = locationOf(ctx);
      const session = await this.deps.sessions.create(
        {
          userId: user.userId,
          loginName: user.loginName,
          displayName: user.displayName,
          department: user.department,
          groups: user.groups,
          idp: idp.config.id,
          location: match?.location.name ?? '',
          clientIp: ip,
          authMethod: 'saml',
        },
        sessionLifetimeMs(rt),
      );
      await this.remapSurrogate(ctx, session);
      await this.deps.store.del(pendingKey(relayState));
      const token = await this.deps.sessions.mintToken(session.id, ip, pending.url, 'gateway', pending.nonce);
      this.deps.log.info({ idp: idpId, login: user.loginName, clientIp: ip, location: session.location, via: ctx.tx ? 'proxy' : 'control' }, 'signed in');
      this.deps.onLogin?.('ok');
      sendRedirect(res, 303, `${rt.gatewayOrigin}/complete?t=${token}`);
    } catch (err) {
      if (!(err instanceof SamlError)) throw err;
      this.deps.onLogin?.(err.code);
      this.deps.log.warn({ idp: idpId, code: err.code, reason: err.reason, clientIp: ip }, 'sign-in refused');
      const body = page(
        'Sign-in failed',
        `<h1>Sign-in failed</h1><p>${escapeHtml(err.hint)}</p><p><small>Error code: <code>${escapeHtml(err.code)}</code></small></p>`,
      );
      sendBody(req, res, err.status, 'text/html; charset=utf-8', body, { ...noStore(), 'x-tollgate-error': err.code });
    }
  }

  /**
   * clstart starts a sign-in at the IdP mapped to `_domain` and lands on `redrurl`, which must be
   * one of the cloud's hosts or on the allow-list.
   */
  private async clstart(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx): Promise<void> {
    const q = query(req);
    if ((q.get('version') ?? '1') !== '1') throw new HttpError(400, 'clstart_version', 'clstart supports version=1.');
    const domain = (q.get('_domain') ?? '').toLowerCase();
    const target = q.get('redrurl') ?? `http://ip.${ctx.rt.cloud}/`;
    const url = safeRedirect(ctx.rt, target);
    if (url === null) throw new HttpError(400, 'redirect_not_allowed', 'redrurl must be a page on this service or on its allow-list.');
    const idp = idpForDomain(ctx.rt, domain);
    if (idp === null) throw new HttpError(400, 'domain_not_mapped', `No identity provider is mapped to "${domain}".`);
    // The gateway carries on from here, so the browser gets its login nonce on the gateway host.
    const id = await this.savePending(ctx.rt, { url, clientIp: clientIp(ctx), idp: idp.config.id });
    sendRedirect(res, 302, `${ctx.rt.gatewayOrigin}/login?r=${id}`);
  }

  // ---- shared steps ----

  /** toIdp records the IdP on the pending sign-in and sends the browser there with an AuthnRequest. */
  private async toIdp(req: IncomingMessage, res: ServerResponse, ctx: AuthCtx, id: string, pending: PendingLogin, idp: IdpRuntime): Promise<void> {
    // The first trip is part of the sign-in already counted when it was saved; each repeat of the
    // same link writes new store records (AuthnRequest IDs), so it counts.
    if (pending.nonce !== undefined) await this.limit(ctx);
    // One nonce per browser, so tabs that sign in at the same time do not undo each other.
    const nonce = readCookie(req.headers.cookie, LOGIN_COOKIE) ?? newId();
    const ttl = ctx.rt.config.authentication.loginTimeoutMs;
    await this.deps.store.set(pendingKey(id), JSON.stringify({ ...pending, idp: idp.config.id, nonce }), ttl);
    const { url } = await idp.sp.authorizeUrl(id);
    res.setHeader('set-cookie', setCookie(LOGIN_COOKIE, nonce, ttl));
    sendRedirect(res, 302, url);
  }

  /**
   * backTo sends a signed-in browser to `url`: with a one-time token when the proxy can plant a cookie
   * there (plain http, or https it inspects for this client: the token is swapped before anything
   * goes upstream), straight there otherwise (an https site it cannot see into is identified by the surrogate).
   */
  private async backTo(res: ServerResponse, ctx: AuthCtx, session: SessionRecord, url: string): Promise<void> {
    if (!url.startsWith('http://') && !(url.startsWith('https://') && this.inspected(ctx, hostOf(url)))) return sendRedirect(res, 307, url);
    const token = await this.deps.sessions.mintToken(session.id, clientIp(ctx), url, 'site');
    sendRedirect(res, 307, withToken(url, token));
  }

  /** inspected tells whether this client's tunnels to host are decrypted now (our own hosts are, whenever there is a CA). */
  private inspected(ctx: AuthCtx, host: string): boolean {
    const inspection = ctx.rt.inspection;
    if (inspection?.minter == null || host === '') return false;
    return isOwnHost(ctx.rt, host) || inspection.decide(host, locationOf(ctx)).inspect;
  }

  /** remapSurrogate points the location's surrogate for this IP at the session, when the location uses one. */
  private async remapSurrogate(ctx: AuthCtx, session: SessionRecord): Promise<void> {
    const loc = locationOf(ctx)?.location;
    if (loc === undefined || !loc.surrogate.enabled) return;
    const ok = await this.deps.sessions.mapSurrogate(loc.name, clientIp(ctx), session.id, loc.surrogate);
    if (!ok) this.deps.log.warn({ clientIp: clientIp(ctx), login: session.loginName }, 'IP surrogate suspended: too many users on this address');
  }

  private async savePending(rt: Runtime, p: PendingLogin): Promise<string> {
    await this.limit({ rt, ip: p.clientIp });
    const id = newId();
    await this.deps.store.set(pendingKey(id), JSON.stringify(p), rt.config.authentication.loginTimeoutMs);
    return id;
  }

  /** limit counts sign-ins (and repeated trips to the IdP) per client IP; beyond SIGN_INS_PER_MINUTE they are refused with 429. */
  private async limit(ctx: AuthCtx | { rt: Runtime; ip: string }): Promise<void> {
    const ip = 'ip' in ctx ? ctx.ip : clientIp(ctx);
    if ((await this.deps.store.incr(rateKey(ip), 60_000)) > SIGN_INS_PER_MINUTE) {
      throw new HttpError(429, 'too_many_sign_ins', 'Too many sign-ins from your address; wait a minute and try again.', { 'retry-after': '60' });
    }
  }

  /** readPending reads a sign-in in progress; null when unknown or expired. */
  private async readPending(id: string): Promise<PendingLogin | null> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(id)) return null;
    const raw = await this.deps.store.get(pendingKey(id));
    return raw === null ? null : (JSON.parse(raw) as PendingLogin);
  }

  /** loadPending reads a sign-in in progress that this client started, or refuses without redirecting. */
  private async loadPending(id: string, ctx: AuthCtx): Promise<PendingLogin> {
    const p = await this.readPending(id);
    if (p === null) throw new HttpError(400, 'login_expired', 'This sign-in link has expired. Open the page you wanted again.');
    if (p.clientIp !== clientIp(ctx)) throw new HttpError(403, 'login_other_client', 'This sign-in link was made for another device or network. Open the page you wanted again.');
    return p;
  }
}

/** idpFor: the IdP a location maps, the only IdP there is, or 'ask' when the login name must choose. */
export function idpFor(rt: Runtime, match: LocationMatch | null): IdpRuntime | 'ask' | null {
  if (rt.idps.size === 0) return null;
  if (match !== null) {
    const name = match.location.name.toLowerCase();
    const mapped = [...rt.idps.values()].filter((p) => p.config.locations.some((l) => l.toLowerCase() === name));
    if (mapped.length === 1) return mapped[0]!;
  }
  if (rt.idps.size === 1) return rt.idps.values().next().value!;
  return 'ask';
}

/** idpForDomain: the IdP mapping this authentication domain, else the default IdP. */
export function idpForDomain(rt: Runtime, domain: string): IdpRuntime | null {
  let fallback: IdpRuntime | null = null;
  for (const p of rt.idps.values()) {
    if (domain !== '' && p.config.domains.some((d) => d.toLowerCase() === domain)) return p;
    if (p.config.default) fallback = p;
  }
  return fallback;
}

/** checkDomain: an IdP that is not the default signs in only users of its own domains. */
function checkDomain(idp: IdpRuntime, loginName: string): void {
  if (idp.config.default) return;
  const at = loginName.lastIndexOf('@');
  const domain = at < 0 ? '' : loginName.slice(at + 1).toLowerCase();
  if (!idp.config.domains.some((d) => d.toLowerCase() === domain)) {
    throw new SamlError('SAML_DOMAIN_NOT_MAPPED', `${loginName}: domain "${domain}" is not mapped to IdP ${idp.config.id}`);
  }
}

/** safeRedirect accepts only http(s) URLs on our own hosts or the allow-list. */
export function safeRedirect(rt: Runtime, target: string): string | null {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return null;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') return null;
  const host = u.hostname.toLowerCase();
  return isOwnHost(rt, host) || rt.redirectAllowList.matches(host) ? u.href : null;
}

function clientIp(ctx: AuthCtx): string {
  return ctx.tx?.clientIp ?? ctx.peerIp;
}

function locationOf(ctx: AuthCtx): LocationMatch | null {
  return ctx.tx !== null ? ctx.tx.match : ctx.rt.locator.lookup(ctx.peerIp);
}

function hostOf(url: string): string {
  try {
    const h = new URL(url).hostname.toLowerCase();
    return h.startsWith('[') ? h.slice(1, -1) : h;
  } catch {
    return '';
  }
}

function query(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

/** readForm reads a bounded application/x-www-form-urlencoded body. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    throw new HttpError(415, 'unsupported_media_type', 'Send the form as application/x-www-form-urlencoded.', { connection: 'close' });
  }
  try {
    return new URLSearchParams((await readBody(req, MAX_FORM_BYTES, FORM_TIMEOUT_MS)).toString('utf8'));
  } catch (err) {
    if (err instanceof ScimError) throw new HttpError(err.status, err.status === 413 ? 'body_too_large' : 'bad_body', err.detail, { connection: 'close' });
    throw err;
  }
}

function noStore(): Record<string, string> {
  return { 'cache-control': 'no-store' };
}

/** sameBytes compares two strings in constant time. */
export function sameBytes(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
