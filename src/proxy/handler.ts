/**
 * handler: the request pipeline's entry, the same behind every front door.
 *
 *   door (explicit listener | TLS terminator | transparent) -> parsed request + Arrival
 *     -> target -> decide (locate -> loop -> port -> token -> own host -> exempt -> identify)
 *     -> act: refuse | redirect to sign in | own host (control app) | forward
 *     -> forwarder (HTTP: forward.ts, CONNECT: tunnel.ts, WebSocket: websocket.ts)
 *     -> one access-log line and one count (txlog.ts)
 *
 * A door only parses, applies its own connection limits, and says where the request came from.
 * Nothing here writes to a socket except through a response or a forwarder.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parseHostPort } from '../config/ip.js';
import { HttpError, rawErrorResponse, sendError } from '../http/errors.js';
import { sendRedirect } from '../http/router.js';
import type { Metrics } from '../metrics.js';
import type { RuntimeRef } from '../runtime.js';
import { readOwnCookies, splitToken, stripOwnCookie, type Identifier } from '../auth/identify.js';
import type { DialOptions } from './dial.js';
import { upstreamFailure } from './errno.js';
import type { HttpForwarder } from './forward.js';
import { cleanRequestHeaders } from './headers.js';
import { attribute, decide, identified, type Decision, type Transaction } from './pipeline.js';
import { requestLineError } from './requestline.js';
import { hasBody, parseTarget, type Target } from './target.js';
import { openTunnel } from './tunnel.js';
import type { Arrival, CountedSocket, RequestFacts, TxLog, TxState } from './txlog.js';
import type { WebSocketForwarder } from './websocket.js';

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

/**
 * Interceptor terminates an inspected tunnel (terminator.ts) and runs the requests decrypted from it
 * back through the pipeline. `reply`: the door spoke HTTP (a CONNECT), so it is answered 200 first.
 * It records the tunnel's transaction when the connection is over.
 */
export interface Interceptor {
  intercept(socket: CountedSocket, head: Buffer, st: TxState, reply: boolean): void;
}

/** PipelineDeps is what the pipeline entry is given: decisions' inputs, forwarders and the log. */
export interface PipelineDeps {
  readonly auth: ProxyAuth;
  readonly runtime: RuntimeRef;
  readonly ownHost: OwnHostHandler;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly txlog: TxLog;
  readonly dial: DialOptions;
  readonly http: HttpForwarder;
  readonly ws: WebSocketForwarder;
  readonly intercept: Interceptor;
}

const STORE_DOWN = 'Sign-in state is unavailable right now; try again in a moment.';

/** RequestPipeline runs every request and tunnel, whichever door it came through. */
export class RequestPipeline {
  constructor(private readonly deps: PipelineDeps) {}

  /** http runs one HTTP request (absolute form, or origin form for our own hosts). */
  http(req: IncomingMessage, res: ServerResponse, arrival: Arrival): void {
    const { deps } = this;
    const rt = deps.runtime.current;
    const st = deps.txlog.begin(rt, req, 'HTTP', arrival);
    const tx = st.tx;
    // Taken now: once the request body has been consumed and destroyed, req.socket may be gone.
    const socket = req.socket as CountedSocket;
    res.once('close', () => {
      if (!res.writableFinished && st.abort !== null) st.abort(); // client abort → upstream abort
      deps.txlog.record(st, socket, res.headersSent ? res.statusCode : 0);
    });
    const refuse = (e: HttpError) => {
      deps.txlog.refused(tx, e.code);
      sendError(req, res, e);
    };

    const target = requestLineError(req) ?? parseTarget(req, tx, rt, arrival);
    if (target instanceof HttpError) return refuse(target);
    const storeDown = (err: Error) => {
      deps.log.warn({ err: err.message, clientIp: tx.clientIp }, 'sign-in state unavailable');
      tx.action = 'error';
      tx.reason = 'store_unavailable';
      sendError(req, res, new HttpError(503, 'store_unavailable', STORE_DOWN));
    };
    const redirect = (r: Redirect, reason: string) => {
      tx.action = 'auth-redirect';
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
          deps.log.debug({ clientIp: tx.clientIp, code: d.code, host: tx.host }, 'denied');
          if (hasBody(req)) res.setHeader('connection', 'close');
          return refuse(new HttpError(d.status, d.code, d.message));
        case 'own': {
          tx.action = 'own-host';
          req.url = target.path;
          const cookies = readOwnCookies(req.headers.cookie);
          if (cookies.length === 0 && !tx.match?.location.surrogate.enabled) return this.#serveOwnHost(req, res, tx);
          deps.auth.identifier.resolve(tx, cookies, false, false).then((who) => {
            if (who !== null) attribute(tx, who);
            this.#serveOwnHost(req, res, tx);
          }, storeDown);
          return;
        }
        case 'token': {
          const split = splitToken(target.path);
          if (split === null) return sendError(req, res, new HttpError(400, 'bad_url', 'The request URL is not valid.'));
          deps.auth.swapToken(tx, split.token, `${target.scheme}://${target.authority}${split.clean}`).then((r) => {
            if (r instanceof HttpError) return refuse(r);
            redirect(r, 'cookie_planted');
          }, storeDown);
          return;
        }
        case 'lookup':
          return this.#lookup(tx, d, d.navigation, req.headers, act, storeDown);
        case 'login':
          deps.auth.loginRedirect(tx).then(
            (r) => redirect(r, 'login_required'),
            (err: Error) => (err instanceof HttpError ? refuse(err) : storeDown(err)),
          );
          return;
        case 'forward':
          return this.#forward(req, res, st, target);
      }
    };
    act(decide(tx, req.headers, deps.auth.identifier));
  }

  /** connect runs one CONNECT: decisions, then a spliced tunnel or an inspected one. */
  connect(req: IncomingMessage, socket: CountedSocket, head: Buffer, arrival: Arrival): void {
    const { st, refuse } = this.#onSocket(req, socket, 'TUNNEL', arrival, true);
    const tx = st.tx;
    const badLine = requestLineError(req);
    if (badLine !== null) return refuse(badLine);
    const authority = parseHostPort(req.url ?? '');
    if (authority === null || authority.port === 0) return refuse(new HttpError(400, 'bad_connect_target', 'CONNECT needs host:port.'));
    this.#tunnelTo(st, socket, head, authority.host, authority.port, req.headers, refuse, true);
  }

  /**
   * tunnel runs a connection whose destination a door learnt without a CONNECT (a transparent TLS
   * listener: SNI or the original destination). Nothing is answered on it: a refusal closes it.
   * `head` holds the bytes the door has read already (the ClientHello), sent on as they were.
   */
  tunnel(socket: CountedSocket, head: Buffer, arrival: Arrival, host: string, port: number): void {
    const facts = { method: 'CONNECT', url: '', headers: {} };
    const { st, refuse } = this.#onSocket(facts, socket, 'TUNNEL', arrival, false);
    this.#tunnelTo(st, socket, head, host, port, facts.headers, refuse, false);
  }

  #tunnelTo(st: TxState, socket: CountedSocket, head: Buffer, host: string, port: number, headers: IncomingHttpHeaders, refuse: (e: HttpError) => void, reply: boolean): void {
    const { deps } = this;
    const tx = st.tx;
    tx.host = host;
    tx.port = port;
    tx.url = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const act = (d: Decision): void => {
      if (d.kind === 'lookup') {
        return this.#lookup(tx, d, false, headers, act, (err) => {
          deps.log.warn({ err: err.message, clientIp: tx.clientIp }, 'sign-in state unavailable');
          refuse(new HttpError(503, 'store_unavailable', STORE_DOWN));
        });
      }
      if (d.kind === 'deny') return refuse(new HttpError(d.status, d.code, d.message));
      if (d.kind === 'inspect') {
        tx.reason = `inspected_${d.reason}`;
        return deps.intercept.intercept(socket, head, st, reply);
      }
      if (d.kind !== 'forward') return refuse(new HttpError(403, 'own_host_tls', 'Own hosts are not tunneled.'));
      this.#tunnel(socket, head, st, reply);
    };
    act(decide(tx, headers, deps.auth.identifier));
  }

  /** upgrade runs one WebSocket upgrade: decisions, then the WebSocket forwarder. */
  upgrade(req: IncomingMessage, socket: CountedSocket, head: Buffer, arrival: Arrival): void {
    const { deps } = this;
    const { st, refuse } = this.#onSocket(req, socket, 'WS', arrival, true);
    const tx = st.tx;
    const rt = tx.rt;
    const target = requestLineError(req) ?? parseTarget(req, tx, rt, arrival);
    if (target instanceof HttpError) return refuse(target);
    const act = (d: Decision): void => {
      if (d.kind === 'lookup') return this.#lookup(tx, d, false, req.headers, act, () => refuse(new HttpError(503, 'store_unavailable', STORE_DOWN)));
      if (d.kind === 'deny') return refuse(new HttpError(d.status, d.code, d.message));
      if (d.kind === 'own') return refuse(new HttpError(403, 'own_host_ws', 'Own hosts do not take WebSockets.'));
      if (d.kind !== 'forward') return refuse(new HttpError(403, 'auth_required', `Sign in first at ${rt.gatewayOrigin}/.`));
      this.#websocket(req, socket, head, st, target);
    };
    act(decide(tx, req.headers, deps.auth.identifier));
  }

  /** #onSocket begins a transaction that answers on a raw socket (CONNECT, upgrade), and its one way to refuse. */
  #onSocket(req: RequestFacts, socket: CountedSocket, protocol: Transaction['protocol'], arrival: Arrival, answer: boolean): { st: TxState; refuse: (e: HttpError) => void } {
    const { txlog } = this.deps;
    const st = txlog.begin(this.deps.runtime.current, req, protocol, arrival);
    socket.on('error', () => socket.destroy());
    // A connection that never spoke HTTP to us (a transparent one) cannot be answered in HTTP: it is closed.
    const refuse = (e: HttpError) => {
      txlog.refused(st.tx, e.code);
      if (answer) socket.end(rawErrorResponse(e.status, e.code, e.message));
      else socket.destroy();
      txlog.record(st, socket, answer ? e.status : 0);
    };
    return { st, refuse };
  }

  /** #lookup asks the store who this is (memory did not know), then acts on the identify step's outcome. */
  #lookup(tx: Transaction, d: Extract<Decision, { kind: 'lookup' }>, navigation: boolean, headers: IncomingHttpHeaders, act: (d: Decision) => void, storeDown: (err: Error) => void): void {
    this.deps.auth.identifier.resolve(tx, d.cookies, d.browser, navigation).then((who) => act(identified(tx, who, headers)), storeDown);
  }

  /** #serveOwnHost hands a request to the control-plane app; whatever it throws becomes a 500, never a crash. */
  #serveOwnHost(req: IncomingMessage, res: ServerResponse, tx: Transaction): void {
    try {
      this.deps.ownHost(req, res, tx);
    } catch (err) {
      this.deps.log.error({ err, host: tx.host }, 'own-host handler failed');
      sendError(req, res, new HttpError(500, 'internal_error', 'Something went wrong on our side.'));
    }
  }

  #forward(req: IncomingMessage, res: ServerResponse, st: TxState, target: Target): void {
    const { deps } = this;
    const tx = st.tx;
    stripOwnCookie(req.headers);
    cleanRequestHeaders(req.headers, tx.rt.viaToken, target.authority, false);
    // A decrypted request goes to the host it names (its Host is the tunnel's SNI name, which the
    // upstream certificate must carry); plain http to where the connection was going, when known.
    const tls = target.scheme === 'https';
    const upstream = { host: tls ? tx.host : (target.dial?.host ?? tx.host), port: target.dial?.port ?? tx.port, path: target.path, via: tx.rt.viaToken, tls };
    const exchange = deps.http.forward(req, res, upstream, (err, headersSent) => {
      const fail = upstreamFailure(err);
      deps.txlog.failed(tx, fail);
      if (headersSent || res.destroyed || req.socket === null || req.socket.destroyed) return; // cut short, or the client left first
      sendError(req, res, new HttpError(fail.status, fail.code, fail.reason));
    });
    st.abort = () => exchange.abort();
  }

  /** splice passes a tunnel the terminator has already answered on as plain bytes (non-TLS on an inspected port). */
  splice(socket: CountedSocket, head: Buffer, st: TxState): void {
    this.#tunnel(socket, head, st, false);
  }

  #tunnel(socket: CountedSocket, head: Buffer, st: TxState, reply: boolean): void {
    const { deps } = this;
    const tx = st.tx;
    const limits = tx.rt.config.limits;
    openTunnel(
      deps.dial,
      { connectTimeoutMs: limits.upstreamTimeoutMs, idleTimeoutMs: limits.clientIdleTimeoutMs, established: reply },
      socket,
      head,
      tx.host,
      tx.port,
      () => deps.metrics.activeTunnels.inc(),
      (r) => {
        if (r.opened) deps.metrics.activeTunnels.dec();
        if (r.connectError) {
          const fail = upstreamFailure(r.connectError);
          deps.txlog.failed(tx, fail);
          if (!reply) socket.destroy();
          else if (socket.writable) socket.end(rawErrorResponse(fail.status, fail.code, fail.reason));
          deps.txlog.record(st, socket, reply ? fail.status : 0);
          return;
        }
        if (!r.opened) tx.reason = 'client_aborted';
        deps.txlog.record(st, socket, r.opened ? 200 : 0);
      },
    );
  }

  #websocket(req: IncomingMessage, socket: CountedSocket, head: Buffer, st: TxState, target: Target): void {
    const { deps } = this;
    const tx = st.tx;
    stripOwnCookie(req.headers);
    cleanRequestHeaders(req.headers, tx.rt.viaToken, target.authority, true);
    req.url = target.path;
    socket.setTimeout(tx.rt.config.limits.clientIdleTimeoutMs, () => socket.destroy());
    deps.metrics.activeTunnels.inc();
    socket.once('close', () => {
      deps.metrics.activeTunnels.dec();
      deps.txlog.record(st, socket, 101);
    });
    // A decrypted upgrade (wss inside an inspected tunnel) goes on over TLS, to where its tunnel went.
    const secure = target.scheme === 'https';
    deps.ws.forward(req, socket, head, secure ? tx.host : (target.dial?.host ?? tx.host), target.dial?.port ?? tx.port, secure, (err) => {
      const fail = upstreamFailure(err);
      deps.txlog.failed(tx, fail);
      if (socket.writable) socket.end(rawErrorResponse(fail.status, fail.code, fail.reason));
      deps.txlog.record(st, socket, fail.status);
    });
  }
}
