/**
 * server: the explicit-proxy listener (data plane).
 *
 *   Client -> Proxy (GET http://host/..)  -> pipeline -> http-proxy (keep-alive agent) -> Web
 *   Client -> Proxy (CONNECT host:443)    -> pipeline -> tunnel (spliced TCP)          -> Web
 *   Client -> Proxy (GET http://h/ Upgrade: websocket) -> pipeline -> http-proxy ws   -> Web
 *   Client -> Proxy (GET http://ip.<cloud>/) -> control-plane app (injected)
 *
 * This module knows no features beyond the pipeline; it depends on the Runtime, an own-host
 * handler, the access log and metrics, all injected.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import httpProxy from 'http-proxy';
import type { Logger } from 'pino';
import { normalizeIp, parseHostPort } from '../config/ip.js';
import type { Config } from '../config/schema.js';
import { answerClientError, HttpError, rawErrorResponse, sendError } from '../http/errors.js';
import { BRIEF_LINGER, lingerClose } from '../http/linger.js';
import { sendRedirect } from '../http/router.js';
import type { AccessLog } from '../log.js';
import type { Metrics } from '../metrics.js';
import { isOwnHost, type RuntimeRef, type Runtime } from '../runtime.js';
import { SelfGuard, UpstreamAgent, type DialOptions } from './dial.js';
import { isUpstreamFault, upstreamFailure, type UpstreamFailure } from './errno.js';
import { cleanRequestHeaders, cleanResponseHeaders } from './headers.js';
import { attribute, clientAddress, decide, identified, type Decision, type Transaction } from './pipeline.js';
import { readOwnCookies, redactTokens, splitToken, stripOwnCookie, stripOwnSetCookie, type Identifier } from '../auth/identify.js';
import { openTunnel } from './tunnel.js';
import { loggableTarget, requestLineError } from './requestline.js';
import { isPacPath } from '../pac/names.js';

/** OwnHostHandler answers a request for one of the cloud's hosts (the control-plane app). */
export type OwnHostHandler = (req: IncomingMessage, res: ServerResponse, tx: Transaction) => void;

/** Redirect is a response that sends the browser elsewhere, maybe planting our cookie on the way. */
export interface Redirect {
  readonly location: string;
  readonly setCookie?: string;
}

/** ProxyAuth is the sign-in machinery the data plane uses; the gateway module provides it. */
export interface ProxyAuth {
  readonly identifier: Identifier;
  /** swapToken redeems a one-time token on tx's host: a redirect to the clean URL with our cookie, or an error. */
  swapToken(tx: Transaction, token: string, cleanUrl: string): Promise<Redirect | HttpError>;
  /** loginRedirect remembers the original URL server-side and answers with the gateway's URL. */
  loginRedirect(tx: Transaction): Promise<Redirect>;
}

/** ProxyDeps is everything the data plane is given by the composition root. */
export interface ProxyDeps {
  readonly auth: ProxyAuth;
  readonly runtime: RuntimeRef;
  readonly ownHost: OwnHostHandler;
  readonly accessLog: AccessLog;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly self: SelfGuard;
}

const TX = Symbol('tollgate.tx');
const BYTES = Symbol('tollgate.bytes');
type TxReq = IncomingMessage & { [TX]?: TxState };
type CountedSocket = Socket & { [BYTES]?: { read: number; written: number } };

interface TxState {
  tx: Transaction;
  logged: boolean;
  proxyReq: http.ClientRequest | null;
}

/** ProxyServer is the listener plus what it needs to shut down cleanly. */
export interface ProxyServer {
  readonly server: http.Server;
  /** Stop accepting, wait up to graceMs for in-flight work, then close what is left. */
  shutdown(graceMs: number): Promise<void>;
}

/** serveOwnHost hands a request to the control-plane app; whatever it throws becomes a 500, never a crash. */
function serveOwnHost(deps: ProxyDeps, req: IncomingMessage, res: ServerResponse, tx: Transaction): void {
  try {
    deps.ownHost(req, res, tx);
  } catch (err) {
    deps.log.error({ err, host: tx.host }, 'own-host handler failed');
    sendError(req, res, new HttpError(500, 'internal_error', 'Something went wrong on our side.'));
  }
}

/** createProxyServer builds the proxy listener (not yet listening). Limits are read from the initial config. */
export function createProxyServer(deps: ProxyDeps, config: Config): ProxyServer {
  const limits = config.limits;
  const dialOpts: DialOptions = { hosts: () => deps.runtime.current.hosts, self: deps.self };
  const agent = new UpstreamAgent(dialOpts, {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: Infinity,
    maxFreeSockets: 256,
    scheduling: 'lifo',
    timeout: limits.upstreamIdleTimeoutMs,
  });
  // Upgraded (WebSocket) sockets leave the pool anyway, so they get their own non-pooling agent.
  const wsAgent = new UpstreamAgent(dialOpts, { keepAlive: false, timeout: limits.upstreamIdleTimeoutMs });
  const proxy = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, selfHandleResponse: true, ws: true });

  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0, // long uploads are bounded by the idle timeout, not a total
    keepAliveTimeout: limits.clientIdleTimeoutMs,
    connectionsCheckingInterval: Math.min(limits.headersTimeoutMs, 5000),
  });
  server.timeout = limits.clientIdleTimeoutMs;

  const perIp = new Map<string, number>();
  const sockets = new Set<Socket>();
  /** Sockets over the per-IP cap: already answered 429, and nothing they send is served. */
  const overCap = new WeakSet<Socket>();

  server.on('connection', (socket: CountedSocket) => {
    const ip = normalizeIp(socket.remoteAddress ?? '');
    const n = (perIp.get(ip) ?? 0) + 1;
    perIp.set(ip, n);
    sockets.add(socket);
    deps.metrics.activeConnections.inc();
    socket[BYTES] = { read: 0, written: 0 };
    socket.once('close', () => {
      sockets.delete(socket);
      deps.metrics.activeConnections.dec();
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    if (n > deps.runtime.current.config.limits.maxConnectionsPerIp) {
      deps.log.warn({ clientIp: ip, connections: n }, 'connection cap per client IP reached');
      overCap.add(socket);
      lingerClose(socket, rawErrorResponse(429, 'too_many_connections', 'Too many concurrent connections from your address.'), BRIEF_LINGER);
    }
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const e = answerClientError(err, socket);
    if (e === null) return;
    deps.log.info({ clientIp: normalizeIp(socket.remoteAddress ?? ''), code: err.code ?? '' }, 'malformed request');
    deps.metrics.requests.inc({ action: 'blocked', status: String(e.status), protocol: 'HTTP' });
  });

  proxy.on('proxyReq', (proxyReq, req) => {
    const st = (req as TxReq)[TX];
    if (!st) return;
    st.proxyReq = proxyReq;
    const rt = st.tx.rt;
    // Response-headers deadline: covers DNS, connect and the origin's think time.
    const timer = setTimeout(() => {
      const e: NodeJS.ErrnoException = new Error('upstream response timeout');
      e.code = 'ETIMEDOUT';
      proxyReq.destroy(e);
    }, rt.config.limits.upstreamTimeoutMs);
    proxyReq.once('response', () => clearTimeout(timer));
    proxyReq.once('close', () => clearTimeout(timer));
  });

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const st = (req as TxReq)[TX];
    if (!st) return;
    proxyRes.setTimeout(st.tx.rt.config.limits.upstreamIdleTimeoutMs, () => proxyRes.destroy());
    // An origin must not set (or shadow) Tollgate's own cookie.
    stripOwnSetCookie(proxyRes.headers);
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, cleanResponseHeaders(proxyRes.headers, st.tx.rt.viaToken));
    proxyRes.pipe(res);
    proxyRes.on('error', () => res.destroy());
  });

  proxy.on('error', (err, req, resOrSocket) => {
    const st = (req as TxReq)[TX];
    if (!st) return;
    const fail = upstreamFailure(err);
    failed(st.tx, fail);
    const httpErr = new HttpError(fail.status, fail.code, fail.reason);
    if (resOrSocket instanceof http.ServerResponse) {
      if (resOrSocket.destroyed || (req as IncomingMessage).socket.destroyed) return; // client left first
      sendError(req, resOrSocket, httpErr);
    } else {
      const s = resOrSocket as Socket;
      if (s.writable) s.end(rawErrorResponse(httpErr.status, httpErr.code, httpErr.message));
      logTx(st, s as CountedSocket, httpErr.status);
    }
  });

  server.on('request', (req: TxReq, res: ServerResponse) => {
    if (overCap.has(req.socket)) return void req.socket.destroy();
    const rt = deps.runtime.current;
    const tx = newTransaction(rt, req, 'HTTP');
    const st: TxState = { tx, logged: false, proxyReq: null };
    req[TX] = st;
    res.once('close', () => {
      if (!res.writableFinished && st.proxyReq !== null) st.proxyReq.destroy(); // client abort → upstream abort
      logTx(st, req.socket as CountedSocket, res.headersSent ? res.statusCode : 0);
    });

    const target = requestLineError(req) ?? parseTarget(req, rt);
    if (target instanceof HttpError) {
      if (target.status !== 400 || target.code !== 'bad_url') res.setHeader('connection', 'close');
      tx.action = 'blocked';
      tx.reason = target.code;
      sendError(req, res, target);
      return;
    }
    const storeDown = (err: Error) => {
      deps.log.warn({ err: err.message, clientIp: tx.clientIp }, 'sign-in state unavailable');
      tx.action = 'error';
      tx.reason = 'store_unavailable';
      sendError(req, res, new HttpError(503, 'store_unavailable', 'Sign-in state is unavailable right now; try again in a moment.'));
    };
    const redirect = (r: Redirect, action: Transaction['action'], reason: string) => {
      tx.action = action;
      tx.reason = reason;
      const h: Record<string, string> = {};
      if (r.setCookie !== undefined) h['set-cookie'] = r.setCookie;
      // The body of a request we redirect is not read; closing keeps it from being taken as the next request.
      if (hasBody(req)) h.connection = 'close';
      sendRedirect(res, 307, r.location, h);
    };
    const act = (d: Decision): void => {
      switch (d.kind) {
        case 'deny':
          tx.action = 'blocked';
          tx.reason = d.code;
          deps.log.debug({ clientIp: tx.clientIp, code: d.code, host: tx.host }, 'denied');
          if (hasBody(req)) res.setHeader('connection', 'close');
          return sendError(req, res, new HttpError(d.status, d.code, d.message));
        case 'own': {
          tx.action = 'own-host';
          req.url = target.path;
          const cookies = readOwnCookies(req.headers.cookie);
          if (cookies.length === 0 && !tx.match?.location.surrogate.enabled) return serveOwnHost(deps, req, res, tx);
          deps.auth.identifier.resolve(tx, cookies, false, false).then((who) => {
            if (who !== null) attribute(tx, who);
            serveOwnHost(deps, req, res, tx);
          }, storeDown);
          return;
        }
        case 'token': {
          const split = splitToken(target.path);
          if (split === null) return sendError(req, res, new HttpError(400, 'bad_url', 'The request URL is not valid.'));
          deps.auth.swapToken(tx, split.token, `http://${target.authority}${split.clean}`).then((r) => {
            if (r instanceof HttpError) {
              tx.action = 'blocked';
              tx.reason = r.code;
              return sendError(req, res, r);
            }
            redirect(r, 'auth-redirect', 'cookie_planted');
          }, storeDown);
          return;
        }
        case 'lookup':
          deps.auth.identifier.resolve(tx, d.cookies, d.browser, d.navigation).then((who) => act(identified(tx, who, req.headers)), storeDown);
          return;
        case 'login':
          deps.auth.loginRedirect(tx).then(
            (r) => redirect(r, 'auth-redirect', 'login_required'),
            (err: Error) => {
              if (!(err instanceof HttpError)) return storeDown(err);
              tx.action = 'blocked';
              tx.reason = err.code;
              sendError(req, res, err);
            },
          );
          return;
        case 'forward':
          stripOwnCookie(req.headers);
          cleanRequestHeaders(req.headers, rt.viaToken, target.authority, false);
          req.url = target.path;
          proxy.web(req, res, { target: { protocol: 'http:', host: tx.host, port: tx.port }, agent });
          return;
      }
    };
    act(decide(tx, req.headers, deps.auth.identifier));
  });

  server.on('connect', (req: TxReq, socket: CountedSocket, head: Buffer) => {
    if (overCap.has(socket)) return void socket.destroy();
    const rt = deps.runtime.current;
    const tx = newTransaction(rt, req, 'TUNNEL');
    const st: TxState = { tx, logged: false, proxyReq: null };
    socket.on('error', () => socket.destroy());
    const authority = parseHostPort(req.url ?? '');
    const refuse = (status: number, code: string, message: string) => {
      tx.action = 'blocked';
      tx.reason = code;
      socket.end(rawErrorResponse(status, code, message));
      logTx(st, socket, status);
    };
    const badLine = requestLineError(req);
    if (badLine !== null) return refuse(badLine.status, badLine.code, badLine.message);
    if (authority === null || authority.port === 0) return refuse(400, 'bad_connect_target', 'CONNECT needs host:port.');
    tx.host = authority.host;
    tx.port = authority.port;
    tx.url = `${authority.host.includes(':') ? `[${authority.host}]` : authority.host}:${authority.port}`;
    const act = (d: Decision): void => {
      if (d.kind === 'lookup') {
        deps.auth.identifier.resolve(tx, d.cookies, d.browser, false).then(
          (who) => act(identified(tx, who, req.headers)),
          (err: Error) => {
            deps.log.warn({ err: err.message, clientIp: tx.clientIp }, 'sign-in state unavailable');
            refuse(503, 'store_unavailable', 'Sign-in state is unavailable right now; try again in a moment.');
          },
        );
        return;
      }
      if (d.kind === 'deny') return refuse(d.status, d.code, d.message);
      if (d.kind !== 'forward') return refuse(403, 'own_host_tls', 'Own hosts are not tunneled.');
      tunnel();
    };
    act(decide(tx, req.headers, deps.auth.identifier));

    function tunnel(): void {
    const limits = rt.config.limits;
    openTunnel(
      { ...dialOpts, connectTimeoutMs: limits.upstreamTimeoutMs, idleTimeoutMs: limits.clientIdleTimeoutMs },
      socket,
      head,
      tx.host,
      tx.port,
      () => deps.metrics.activeTunnels.inc(),
      (r) => {
        if (r.opened) deps.metrics.activeTunnels.dec();
        if (r.connectError) {
          const fail = upstreamFailure(r.connectError);
          failed(tx, fail);
          if (socket.writable) socket.end(rawErrorResponse(fail.status, fail.code, fail.reason));
          logTx(st, socket, fail.status);
          return;
        }
        if (!r.opened) tx.reason = 'client_aborted';
        logTx(st, socket, r.opened ? 200 : 0);
      },
    );
    }
  });

  server.on('upgrade', (req: TxReq, socket: CountedSocket, head: Buffer) => {
    if (overCap.has(socket)) return void socket.destroy();
    const rt = deps.runtime.current;
    const tx = newTransaction(rt, req, 'WS');
    const st: TxState = { tx, logged: false, proxyReq: null };
    req[TX] = st;
    socket.on('error', () => socket.destroy());
    const target = requestLineError(req) ?? parseTarget(req, rt);
    const refuse = (e: HttpError) => {
      tx.action = 'blocked';
      tx.reason = e.code;
      socket.end(rawErrorResponse(e.status, e.code, e.message));
      logTx(st, socket, e.status);
    };
    if (target instanceof HttpError) return refuse(target);
    const act = (d: Decision): void => {
      if (d.kind === 'lookup') {
        deps.auth.identifier.resolve(tx, d.cookies, d.browser, false).then(
          (who) => act(identified(tx, who, req.headers)),
          () => refuse(new HttpError(503, 'store_unavailable', 'Sign-in state is unavailable right now; try again in a moment.')),
        );
        return;
      }
      if (d.kind === 'deny') return refuse(new HttpError(d.status, d.code, d.message));
      if (d.kind === 'own') return refuse(new HttpError(403, 'own_host_ws', 'Own hosts do not take WebSockets.'));
      if (d.kind !== 'forward') return refuse(new HttpError(403, 'auth_required', `Sign in first at http://${rt.gatewayHost}/.`));
      upgrade(target);
    };
    act(decide(tx, req.headers, deps.auth.identifier));

    function upgrade(target: Target): void {
    stripOwnCookie(req.headers);
    cleanRequestHeaders(req.headers, rt.viaToken, target.authority, true);
    req.url = target.path;
    socket.setTimeout(rt.config.limits.clientIdleTimeoutMs, () => socket.destroy());
    deps.metrics.activeTunnels.inc();
    let counted = true;
    socket.once('close', () => {
      if (counted) deps.metrics.activeTunnels.dec();
      counted = false;
      logTx(st, socket, 101);
    });
    proxy.ws(req, socket, head, { target: { protocol: 'http:', host: tx.host, port: tx.port }, agent: wsAgent });
    }
  });

  /** failed records an upstream failure on the transaction; loops are the client's, not the origin's. */
  function failed(tx: Transaction, fail: UpstreamFailure): void {
    const upstream = isUpstreamFault(fail);
    if (upstream) deps.metrics.upstreamErrors.inc({ code: fail.code });
    tx.action = upstream ? 'error' : 'blocked';
    tx.reason = fail.code;
  }

  function logTx(st: TxState, socket: CountedSocket, status: number): void {
    if (st.logged) return;
    st.logged = true;
    const tx = st.tx;
    const b = socket[BYTES] ?? { read: 0, written: 0 };
    const reqBytes = socket.bytesRead - b.read;
    const respBytes = socket.bytesWritten - b.written;
    b.read = socket.bytesRead;
    b.written = socket.bytesWritten;
    if (status === 0 && tx.reason === '') tx.reason = 'client_aborted';
    deps.metrics.requests.inc({ action: tx.action, status: String(status), protocol: tx.protocol });
    deps.accessLog.write({
      time: new Date().toISOString(),
      node: tx.rt.nodeName,
      login: tx.login,
      department: tx.department,
      groups: tx.identity?.session.groups ?? NO_GROUPS,
      location: tx.match?.location.name ?? '',
      sublocation: tx.match?.sublocation?.name ?? '',
      clientIp: tx.clientIp,
      method: tx.method,
      url: loggableTarget(redactTokens(tx.url, tx.host === tx.rt.gatewayHost)),
      host: tx.host,
      status,
      action: tx.action,
      reason: tx.reason,
      protocol: tx.protocol,
      reqBytes,
      respBytes,
      durationMs: Math.round((performance.now() - tx.startMs) * 1000) / 1000,
    });
  }

  return {
    server,
    shutdown(graceMs: number): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const t = setTimeout(() => {
          for (const s of sockets) s.destroy();
          agent.destroy();
          wsAgent.destroy();
        }, graceMs);
        t.unref();
        server.once('close', () => {
          clearTimeout(t);
          agent.destroy();
          wsAgent.destroy();
        });
      });
    },
  };
}

function newTransaction(rt: Runtime, req: IncomingMessage, protocol: Transaction['protocol']): Transaction {
  const peerIp = normalizeIp(req.socket.remoteAddress ?? '');
  const clientIp = clientAddress(rt, peerIp, req.headers['x-forwarded-for']);
  return {
    rt,
    startMs: performance.now(),
    protocol,
    peerIp,
    clientIp,
    match: rt.locator.lookup(clientIp),
    method: req.method ?? '',
    url: req.url ?? '',
    host: '',
    port: 0,
    login: '',
    department: '',
    action: 'allowed',
    reason: '',
    identity: null,
  };
}

const NO_GROUPS: readonly string[] = Object.freeze([]);

/** hasBody tells whether a request announced a body (which a refusal leaves unread). */
function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

interface Target {
  readonly authority: string;
  readonly path: string;
}

/**
 * parseTarget reads an absolute-form target (`http://host:port/path`), or an origin-form request
 * for one of our own hosts, into the transaction. Anything else is a 400.
 */
function parseTarget(req: TxReq, rt: Runtime): Target | HttpError {
  const tx = req[TX]!.tx;
  const raw = req.url ?? '';
  if (raw.charCodeAt(0) === 47 /* '/' */) {
    // Origin form: only our own hosts are answered here (PAC downloads, the status page).
    if (isPacPath(raw.split('?')[0]!)) {
      // A PAC download sent straight to us (http://<proxy>:<port>/proxy.pac) is pac.<cloud>'s; the
      // locate step still refuses sources in no location.
      tx.host = `pac.${rt.cloud}`;
      tx.port = 80;
      tx.url = `http://${req.headers.host ?? tx.host}${raw}`;
      return { authority: tx.host, path: raw };
    }
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    const a = parseHostPort(hostHeader.includes(':') || hostHeader.startsWith('[') ? hostHeader : `${hostHeader}:80`);
    if (a === null) return new HttpError(400, 'not_a_proxy_request', 'This is a proxy: send absolute-form requests (http://host/path).');
    tx.host = a.host;
    tx.port = a.port;
    tx.url = `http://${hostHeader}${raw}`;
    tx.originForm = true;
    if (isOwnHost(rt, tx.host)) return { authority: hostHeader, path: raw };
    return new HttpError(400, 'not_a_proxy_request', 'This is a proxy: send absolute-form requests (http://host/path).');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return new HttpError(400, 'bad_url', 'The request URL is not valid.');
  }
  if (url.protocol !== 'http:') return new HttpError(400, 'unsupported_scheme', `Scheme ${url.protocol} is not proxied; use CONNECT for https.`);
  if (url.username !== '' || url.password !== '') return new HttpError(400, 'credentials_in_url', 'URLs with credentials are not proxied.');
  tx.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  tx.port = url.port === '' ? 80 : Number(url.port);
  tx.url = raw;
  return { authority: url.host, path: `${url.pathname}${url.search}` };
}
