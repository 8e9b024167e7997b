/**
 * app: the control-plane app, reached two ways with one set of handlers:
 *
 *   Ops / IdP -> control listener (loopback)  -> /healthz /readyz /metrics, /admin/* (src/admin/), own hosts by Host
 *   Browser   -> Proxy (GET http://ip.<cloud>/) -> own-host handler -> same app
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { normalizeIp } from '../config/ip.js';
import { HttpError, sendError } from '../http/errors.js';
import { Router, run, sendBody, sendRedirect, type Handler } from '../http/router.js';
import type { Metrics } from '../metrics.js';
import type { Transaction } from '../proxy/pipeline.js';
import { isOwnHost, type RuntimeRef, type Runtime } from '../runtime.js';
import type { Store } from '../sessions/store.js';
import { buildStatusView, type Address, type StatusView } from '../status/view.js';
import { pickStatusFormat, statusResponse } from '../status/format.js';
import type { CaSource } from '../status/certificate.js';
import type { Directory } from '../directory/directory.js';
import { matchScimPath, type ScimHandler } from '../scim/server.js';
import type { ScimTokens } from '../scim/tokens.js';
import { CLEAR_COOKIE, csrfToken, sameBytes, type Gateway } from '../auth/gateway.js';
import { isNavigation } from '../auth/identify.js';
import type { Sessions } from '../sessions/session.js';
import { readBody } from '../scim/body.js';
import { isPacPath } from '../pac/names.js';
import { servePac } from '../pac/serve.js';
import { adminRoutes } from '../admin/routes.js';
import type { ActivationRequest, ActivationResult, Activator } from '../activation.js';
import { AdminGuard } from '../admin/guard.js';
import { apiRoutes } from '../admin/api.js';
import { configRoutes } from '../admin/config.js';
import { dashboardRoutes } from '../admin/dashboard.js';
import type { AdminTokens } from '../admin/tokens.js';

export type { ActivationResult } from '../activation.js';

/** ControlDeps is what the control-plane app is given. */
export interface ControlDeps {
  readonly runtime: RuntimeRef;
  readonly metrics: Metrics;
  readonly store: Store;
  readonly log: Logger;
  readonly activate: (req: ActivationRequest) => Promise<ActivationResult>;
  readonly activator: Activator;
  /** configProblem says why this node runs an older config than the active one (readyz turns 503); null when it does not. */
  readonly configProblem: () => string | null;
  readonly certsDir: string;
  readonly reopenLogs: () => boolean;
  /** Whether shutdown has begun (readyz turns 503 so balancers drain us). */
  readonly draining: () => boolean;
  readonly scim: ScimHandler;
  readonly directory: Directory;
  readonly tokens: ScimTokens;
  readonly adminTokens: AdminTokens;
  readonly gateway: Gateway;
  readonly sessions: Sessions;
  /** cluster is set when this is one worker of several on a node: metrics and readiness cover them all. */
  readonly cluster?: {
    readonly id: number;
    metrics(): Promise<string>;
    notReady(): Promise<string | null>;
  };
  /** The proxy listener as bound, for the PAC URL the status page gives. */
  readonly proxyAddress?: () => Address | null;
  /** Tollgate's CA for TLS inspection, when one is configured (the status page links to it). */
  readonly ca?: CaSource;
}

/** RequestCtx is one request's view: the runtime snapshot and, when it came via the proxy, its transaction. */
interface RequestCtx {
  readonly rt: Runtime;
  readonly tx: Transaction | null;
  readonly peerIp: string;
}

/** ControlApp serves the control listener and the own hosts. */
export interface ControlApp {
  /** direct handles a request on the control listener. */
  direct(req: IncomingMessage, res: ServerResponse): void;
  /** ownHost handles a request for *.<cloud> that came through the proxy. */
  ownHost(req: IncomingMessage, res: ServerResponse, tx: Transaction): void;
}

const LOOPBACK = /^(127\.|::1$)/;

/**
 * caCertificate serves the TLS-inspection CA for users to install: `/ca.crt` as DER with the type
 * browsers and OSes open as "install this CA", `/ca.pem` as PEM for tools. Both are public.
 */
function caCertificate(format: 'der' | 'pem'): Handler<RequestCtx> {
  return (req, res, ctx) => {
    const ca = ctx.rt.inspection?.ca;
    if (!ca) throw new HttpError(404, 'no_ca', 'TLS inspection has no CA here.');
    if (format === 'der') sendBody(req, res, 200, 'application/x-x509-ca-cert', ca.certDer, { 'cache-control': 'no-cache' });
    else sendBody(req, res, 200, 'application/x-pem-file', ca.certPem, { 'cache-control': 'no-cache', 'content-disposition': 'attachment; filename="tollgate-ca.pem"' });
  };
}

/** createControlApp builds the app; route tables are built once, here. */
export function createControlApp(deps: ControlDeps): ControlApp {
  const ops = new Router<RequestCtx>()
    .on('GET', '/ca.crt', caCertificate('der'))
    .on('GET', '/ca.pem', caCertificate('pem'))
    .on('GET', '/healthz', (req, res) => sendBody(req, res, 200, 'text/plain; charset=utf-8', 'ok\n', { 'cache-control': 'no-store' }))
    .on('GET', '/readyz', async (req, res, ctx) => {
      if (deps.draining()) throw new HttpError(503, 'draining', 'Shutting down.');
      const behind = deps.configProblem();
      if (behind !== null) throw new HttpError(503, 'config_not_applied', behind);
      try {
        await deps.store.ping();
      } catch (err) {
        throw new HttpError(503, 'store_unavailable', `Store (${deps.store.kind}) is not reachable: ${(err as Error).message}`);
      }
      if (deps.cluster !== undefined) {
        const why = await deps.cluster.notReady().catch((err: Error) => err.message);
        if (why !== null) throw new HttpError(503, 'workers_not_ready', `Not every worker is serving: ${why}.`);
      }
      sendBody(req, res, 200, 'text/plain; charset=utf-8', `ready: config v${ctx.rt.version}, store ${deps.store.kind}\n`, { 'cache-control': 'no-store' });
    })
    .on('GET', '/metrics', async (req, res) => {
      deps.metrics.configVersion.set(deps.runtime.current.version);
      // With several workers, the primary sums every worker's counters (prom-client's aggregator).
      const text = deps.cluster !== undefined ? await deps.cluster.metrics() : await deps.metrics.registry.metrics();
      sendBody(req, res, 200, deps.metrics.registry.contentType, text, { 'cache-control': 'no-store' });
    });

  const adminDeps = { guard: new AdminGuard(deps.adminTokens), log: deps.log, activate: deps.activate, activator: deps.activator, certsDir: deps.certsDir, reopenLogs: deps.reopenLogs, store: deps.store, directory: deps.directory, tokens: deps.tokens, sessions: deps.sessions };
  const admin = configRoutes(apiRoutes(adminRoutes(adminDeps), adminDeps), adminDeps);
  const dashboard = dashboardRoutes({ ...adminDeps, adminTokens: deps.adminTokens });

  /** spMetadata serves `/saml/metadata/<idpId>`: the SP metadata to paste into the IdP. */
  function spMetadata(req: IncomingMessage, res: ServerResponse, ctx: RequestCtx): boolean {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!path.startsWith('/saml/metadata/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(req, res, new HttpError(405, 'method_not_allowed', `${req.method} is not allowed here.`, { allow: 'GET' }));
      return true;
    }
    let id: string;
    try {
      id = decodeURIComponent(path.slice('/saml/metadata/'.length));
    } catch {
      id = ''; // a malformed escape names no IdP
    }
    const idp = ctx.rt.idps.get(id);
    if (!idp) {
      sendError(req, res, new HttpError(404, 'unknown_idp', 'No such IdP.'));
      return true;
    }
    sendBody(req, res, 200, 'application/samlmetadata+xml', idp.sp.spMetadataXml(), { 'cache-control': 'no-store' });
    return true;
  }

  /** scimRoute sends SCIM base-URL paths to the SCIM handler. */
  function scimRoute(req: IncomingMessage, res: ServerResponse): boolean {
    if (matchScimPath((req.url ?? '/').split('?')[0]!) === null) return false;
    deps.scim(req, res);
    return true;
  }

  const status = new Router<RequestCtx>()
    .on('GET', '/ca.crt', caCertificate('der'))
    .on('GET', '/ca.pem', caCertificate('pem'))
    .on('GET', '/', (req, res, ctx) => {
      const format = pickStatusFormat(new URL(req.url ?? '/', 'http://x').searchParams.get('format'), req.headers.accept);
      const view = statusView(ctx, req);
      // A browser we cannot place asks the gateway, once, whether it has a session there.
      if (view.viaProxy && view.user === null && view.exemptBecause !== 'exemption' && format === 'html' && isNavigation(req.method ?? '', req.headers) && !(req.url ?? '').includes('probed=1') && ctx.rt.idps.size > 0) {
        // Asked over https (inside an inspected tunnel), the probe comes back to the https page.
        const https = (req.socket as { encrypted?: boolean }).encrypted === true;
        return sendRedirect(res, 307, `${ctx.rt.gatewayOrigin}/probe${https ? '?back=https' : ''}`);
      }
      const r = statusResponse(format, view);
      sendBody(req, res, 200, r.type, r.body, r.headers);
    })
    .on('POST', '/logout', async (req, res, ctx) => {
      const form = new URLSearchParams((await readBody(req, 4096, 10_000).catch(() => Buffer.alloc(0))).toString('utf8'));
      const who = ctx.tx?.identity;
      const origin = req.headers.origin;
      const here = `http://ip.${ctx.rt.cloud}`;
      if (origin !== undefined && origin !== here) throw new HttpError(403, 'csrf_failed', 'Sign-out must come from the status page.');
      if (who == null) {
        return sendRedirect(res, 303, `${here}/`, { 'set-cookie': CLEAR_COOKIE });
      }
      if (!sameBytes(form.get('csrf') ?? '', csrfToken(who.session.id))) throw new HttpError(403, 'csrf_failed', 'Sign-out must come from the status page.');
      await deps.sessions.revoke(who.session.id);
      deps.log.info({ login: who.session.loginName, clientIp: ctx.tx?.clientIp }, 'signed out');
      sendRedirect(res, 303, `${here}/?probed=1`, { 'set-cookie': CLEAR_COOKIE });
    });

  /** hostApps maps the first label of an own host to its router. */
  const hostApps = new Map<string, Router<RequestCtx>>([
    ['ip', status],
    ['gateway', deps.gateway.gatewayRoutes],
    ['login', deps.gateway.loginRoutes],
  ]);

  /** statusView gathers what the status page shows for this request (view.ts says which doors count as direct). */
  function statusView(ctx: RequestCtx, req: IncomingMessage): StatusView {
    return buildStatusView({
      rt: ctx.rt,
      tx: ctx.tx,
      peerIp: ctx.peerIp,
      xff: ctx.tx === null ? req.headers['x-forwarded-for'] : undefined,
      localAddress: req.socket.localAddress ?? '',
      proxyListener: deps.proxyAddress?.() ?? null,
      ca: deps.ca?.() ?? null,
      worker: deps.cluster === undefined ? null : { id: deps.cluster.id, pid: process.pid },
      now: Date.now(),
    });
  }

  /** pac serves a PAC download: the client is the proxied one, or the peer of a direct request. */
  function pac(req: IncomingMessage, res: ServerResponse, ctx: RequestCtx): void {
    const clientIp = ctx.tx?.clientIp ?? ctx.peerIp;
    const match = ctx.tx ? ctx.tx.match : ctx.rt.locator.lookup(clientIp);
    run((rq, rs, c: RequestCtx) => servePac(rq, rs, c.rt, clientIp, match?.location.name ?? null), req, res, ctx, deps.log);
  }

  function byHost(req: IncomingMessage, res: ServerResponse, ctx: RequestCtx, host: string): boolean {
    const rt = ctx.rt;
    if (host === rt.cloud || !isOwnHost(rt, host)) return false;
    const label = host.slice(0, host.length - rt.cloud.length - 1);
    if (label === 'scim' && scimRoute(req, res)) return true;
    if (label === 'login' && spMetadata(req, res, ctx)) return true;
    // Every name on pac.<cloud> is a PAC file: an unknown one gets the default PAC.
    if (label === 'pac') {
      pac(req, res, ctx);
      return true;
    }
    const app = hostApps.get(label);
    if (app && app.handle(req, res, ctx, deps.log)) return true;
    sendError(req, res, new HttpError(404, 'not_found', `Nothing is served at ${host}${(req.url ?? '/').split('?')[0]}.`));
    return true;
  }

  return {
    direct(req, res) {
      const rt = deps.runtime.current;
      const ctx: RequestCtx = { rt, tx: null, peerIp: normalizeIp(req.socket.remoteAddress ?? '') };
      const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
      if (byHost(req, res, ctx, host)) return;
      if (isPacPath((req.url ?? '/').split('?')[0]!)) return pac(req, res, ctx);
      if (ops.handle(req, res, ctx, deps.log)) return;
      if (admin.router.handle(req, res, ctx, deps.log)) return;
      if (dashboard.handle(req, res, ctx, deps.log)) return;
      if (scimRoute(req, res) || spMetadata(req, res, ctx)) return;
      // The ACS answers here too, for IdPs that post to the control listener.
      if (deps.gateway.loginRoutes.handle(req, res, ctx, deps.log)) return;
      sendError(req, res, new HttpError(404, 'not_found', 'No such endpoint.'));
    },
    ownHost(req, res, tx) {
      const ctx: RequestCtx = { rt: tx.rt, tx, peerIp: tx.peerIp };
      if (byHost(req, res, ctx, tx.host)) return;
      // The bare cloud name: show the status page too.
      if (status.handle(req, res, ctx, deps.log)) return;
      sendError(req, res, new HttpError(404, 'not_found', 'No such page.'));
    },
  };
}
