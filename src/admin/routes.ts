/**
 * routes: the admin API on the control listener. Every route passes the AdminGuard first (token,
 * then loopback and Host); every state-changing route writes one audit line, whatever its outcome.
 *
 *   tollgate activate | scim token | reauth | users | groups -> /admin/* -> activate, tokens, Directory, Sessions
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Directory } from '../directory/directory.js';
import { HttpError } from '../http/errors.js';
import { Router, sendBody } from '../http/router.js';
import type { Runtime } from '../runtime.js';
import type { ScimTokens } from '../scim/tokens.js';
import type { Sessions } from '../sessions/session.js';
import { Audit, type AuditOutcome } from './audit.js';
import type { AdminGuard } from './guard.js';
import type { ActivationRequest, ActivationResult, Activator } from '../activation.js';
import type { Store } from '../sessions/store.js';
import { scimBaseUrl } from './idps.js';


/** AdminCtx is what an admin route needs of one request: the runtime snapshot and the peer. */
export interface AdminCtx {
  readonly rt: Runtime;
  readonly peerIp: string;
}

/** AdminDeps is what the admin routes are given. */
export interface AdminDeps {
  readonly guard: AdminGuard;
  readonly log: Logger;
  readonly activate: (req: ActivationRequest) => Promise<ActivationResult>;
  readonly activator: Activator;
  /** certsDir is where an IdP metadata import writes certificates (`certs/` beside the config file). */
  readonly certsDir: string;
  /** store is what explain reads (through a read-only view). */
  readonly store: Store;
  /** reopenLogs reopens a file access log; false when it is not a file. */
  readonly reopenLogs: () => boolean;
  readonly directory: Directory;
  readonly tokens: ScimTokens;
  readonly sessions: Sessions;
}

/** Done is what a state-changing handler tells the audit log once it has answered. */
export interface Done {
  readonly target?: Record<string, unknown>;
  readonly outcome?: AuditOutcome;
  readonly status?: number;
  readonly detail?: Record<string, unknown>;
}

type Read = (req: IncomingMessage, res: ServerResponse, ctx: AdminCtx, who: string) => Promise<void>;
type Change = (req: IncomingMessage, res: ServerResponse, ctx: AdminCtx, who: string) => Promise<Done>;

/** AdminRoutes wraps handlers in the guard (and the audit log) and holds the route table. */
export class AdminRoutes {
  readonly router = new Router<AdminCtx>();
  readonly audit: Audit;

  constructor(private readonly guard: AdminGuard, log: Logger) {
    this.audit = new Audit(log);
  }

  /** read registers a route that changes nothing: authorized, not audited. */
  read(method: string, path: string, h: Read): this {
    this.router.on(method, path, async (req, res, ctx) => h(req, res, ctx, await this.guard.authorize(req, ctx.peerIp)));
    return this;
  }

  /** change registers a state-changing route: authorized, and audited as `action` on every outcome. */
  change(method: string, path: string, action: string, h: Change): this {
    this.router.on(method, path, async (req, res, ctx) => {
      let who: string | null = null;
      try {
        who = await this.guard.authorize(req, ctx.peerIp);
        const d = await h(req, res, ctx, who);
        this.audit.write({ who, action, ...(d.target ? { target: d.target } : {}), outcome: d.outcome ?? 'ok', status: d.status ?? 200, peer: ctx.peerIp, ...(d.detail ? { detail: d.detail } : {}) });
      } catch (err) {
        this.audit.thrown(who, action, ctx.peerIp, err, queryOf(req));
        throw err;
      }
    });
    return this;
  }
}

/** queryOf is a refused call's query as its target (values bounded: they come from anyone). */
function queryOf(req: IncomingMessage): Record<string, string> | undefined {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const out: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of q) {
    if (++n > 8) break;
    out[k.slice(0, 64)] = v.slice(0, 200);
  }
  return n === 0 ? undefined : out;
}

/** sendJson answers with an uncached JSON body. */
export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  sendBody(req, res, status, 'application/json', JSON.stringify(body) + '\n', { 'cache-control': 'no-store' });
}

/** queryParams reads the request's query string. */
export function queryParams(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://x').searchParams;
}

/** pageOf reads `offset` and `limit` (default 100, at most 1000). */
export function pageOf(req: IncomingMessage): { offset: number; limit: number } {
  const q = queryParams(req);
  const offset = Math.max(0, Math.min(Number(q.get('offset') ?? 0) || 0, 1e9));
  const limit = Math.max(1, Math.min(Number(q.get('limit') ?? 100) || 100, 1000));
  return { offset, limit };
}

/** idpParam reads `?idp=` and checks it names a configured IdP (with SCIM on, when asked). */
export function idpParam(rt: Runtime, req: IncomingMessage, mustBeScim = true): string {
  return checkIdp(rt, queryParams(req).get('idp') ?? '', mustBeScim);
}

/** checkIdp checks that `idp` names a configured IdP (with SCIM on, when asked); 404 or 409 otherwise. */
export function checkIdp(rt: Runtime, idp: unknown, mustBeScim: boolean): string {
  const found = typeof idp === 'string' ? rt.idps.get(idp) : undefined;
  if (!found) throw new HttpError(404, 'unknown_idp', `No IdP "${String(idp).slice(0, 64)}" is configured (${[...rt.idps.keys()].join(', ') || 'none'}).`);
  if (mustBeScim && found.config.provisioning !== 'scim') throw new HttpError(409, 'scim_not_enabled', `IdP "${found.config.id}" uses ${found.config.provisioning} provisioning; set provisioning: scim first.`);
  return found.config.id;
}

/** rotateScimToken makes a new SCIM token for an IdP and answers it (shown once, never logged). */
export async function rotateScimToken(deps: Pick<AdminDeps, 'tokens' | 'log'>, rt: Runtime, idp: string, req: IncomingMessage, res: ServerResponse): Promise<Done> {
  const tenant = `${rt.config.orgId}/${idp}`;
  const token = await deps.tokens.generate(tenant);
  deps.log.info({ idp }, 'SCIM token generated; the previous one no longer works');
  sendJson(req, res, 200, { idp, tenant, baseUrl: scimBaseUrl(rt, idp), token });
  return { target: { idp } };
}

/**
 * adminRoutes is the admin API the CLI calls (`/admin/*`). `revokeLogin` ends a login name's
 * sessions in every IdP's directory, as force re-authentication does.
 */
export function adminRoutes(deps: AdminDeps): AdminRoutes {
  return new AdminRoutes(deps.guard, deps.log)
    .change('POST', '/admin/activate', 'config.activate', async (req, res, _ctx, who) => {
      req.resume();
      const r = await deps.activate({ who, source: 'file' });
      sendJson(req, res, r.ok ? 200 : 422, r);
      return r.ok ? { detail: { version: r.version } } : { outcome: 'failed', status: 422, detail: { errors: r.errors.length } };
    })
    .change('POST', '/admin/scim/token', 'scim.token.rotate', async (req, res, ctx) => {
      req.resume();
      return rotateScimToken(deps, ctx.rt, idpParam(ctx.rt, req), req, res);
    })
    .read('GET', '/admin/users', async (req, res, ctx) => {
      const idp = idpParam(ctx.rt, req, false);
      const r = await deps.directory.listUsers(`${ctx.rt.config.orgId}/${idp}`, pageOf(req));
      sendJson(req, res, 200, { idp, ...r });
    })
    .read('GET', '/admin/groups', async (req, res, ctx) => {
      const idp = idpParam(ctx.rt, req, false);
      const r = await deps.directory.listGroups(`${ctx.rt.config.orgId}/${idp}`, pageOf(req));
      sendJson(req, res, 200, { idp, ...r });
    })
    .change('POST', '/admin/reauth', 'sessions.reauth', async (req, res, ctx) => {
      req.resume();
      const user = queryParams(req).get('user') || null;
      const revoked = user === null ? await deps.sessions.revokeAll() : await revokeLogin(deps, ctx.rt, user);
      deps.log.info({ user: user ?? '(everyone)', sessions: revoked }, 're-authentication forced');
      sendJson(req, res, 200, { user, revoked });
      return { target: { user: user ?? '*' }, detail: { revoked } };
    });
}

/** revokeLogin ends the sessions of a login name in every IdP's directory; returns how many. */
export async function revokeLogin(deps: Pick<AdminDeps, 'directory' | 'sessions'>, rt: Runtime, login: string): Promise<number> {
  let revoked = 0;
  for (const id of rt.idps.keys()) {
    const u = await deps.directory.lookupLogin(`${rt.config.orgId}/${id}`, login);
    if (u !== null) revoked += await deps.sessions.revokeUser(u.id);
  }
  return revoked;
}
