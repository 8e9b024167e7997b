/**
 * pipeline: the ordered decisions for one transaction. Each step is a small named function that
 * returns a Decision or null; the first decision wins. No step writes to a socket.
 *
 *   locate -> loop -> connect port -> token -> own host -> exempt -> inspect -> identify (-> enforce) -> forward
 *
 * A tunnel that is inspected is not identified itself: each request decrypted from it comes back
 * through these steps (door `decrypted`), and is identified, redirected to sign in or refused there.
 *
 * Identification answers from memory when it can; when only the store knows, the identify step
 * says `lookup` and the caller resumes with `afterLookup` once the store has answered.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { normalizeIp, parseIPv4, parseIPv6Into } from '../config/ip.js';
import { isOwnHost, type Runtime } from '../runtime.js';
import type { Action } from '../log.js';
import type { LocationMatch } from './locate.js';
import { isBrowser, isFrameLoad, isNavigation, readOwnCookies, splitToken, TOKEN_PARAM, type Identifier, type Identity } from '../auth/identify.js';

/** Transaction is what one request or tunnel accumulates for its decisions and its access-log line. */
export interface Transaction {
  readonly rt: Runtime;
  readonly startMs: number;
  readonly protocol: 'HTTP' | 'TUNNEL' | 'WS';
  readonly peerIp: string;
  clientIp: string;
  match: LocationMatch | null;
  method: string;
  /** The URL as logged: absolute for HTTP, host:port for tunnels. */
  url: string;
  /** Lower-case host without port or brackets. */
  host: string;
  port: number;
  login: string;
  department: string;
  action: Action;
  reason: string;
  /** Who this is, once identified. */
  identity: Identity | null;
  /** Set by the explicit listener for an origin-form request sent straight to it: the client is not using the proxy. */
  originForm?: boolean;
}

/** Decision is what the pipeline concluded. */
export type Decision =
  | { readonly kind: 'deny'; readonly status: number; readonly code: string; readonly message: string }
  | { readonly kind: 'own' }
  | { readonly kind: 'forward' }
  /** The URL carries a one-time token: swap it for a cookie (needs the store). */
  | { readonly kind: 'token' }
  /** Memory does not know this client: ask the store, then call afterLookup. */
  | { readonly kind: 'lookup'; readonly cookies: readonly string[]; readonly browser: boolean; readonly navigation: boolean }
  /** An unidentified browser page load: send it to the gateway. */
  | { readonly kind: 'login' }
  /** A tunnel to terminate with our CA and run request by request (why: the rule that decided). */
  | { readonly kind: 'inspect'; readonly reason: string };

type Step = (tx: Transaction, headers: IncomingHttpHeaders, auth: Identifier) => Decision | null;

const FORWARD: Decision = Object.freeze({ kind: 'forward' });
const OWN: Decision = Object.freeze({ kind: 'own' });
const TOKEN: Decision = Object.freeze({ kind: 'token' });
const LOGIN: Decision = Object.freeze({ kind: 'login' });
const NO_COOKIES: readonly string[] = Object.freeze([]);
const scratch6 = new Uint16Array(8);

function isIp(s: string): boolean {
  return parseIPv4(s) >= 0 || parseIPv6Into(s, scratch6);
}

/**
 * clientAddress picks the client IP: the peer, or — only when the peer is a trusted forwarder —
 * the right-most X-Forwarded-For entry that is not itself a trusted forwarder.
 */
export function clientAddress(rt: Runtime, peerIp: string, xff: string | string[] | undefined): string {
  if (xff === undefined || rt.trustedForwarders.size === 0 || !rt.trustedForwarders.has(peerIp)) return peerIp;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  let client = peerIp;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]!.trim());
    if (!isIp(hop)) break; // a malformed hop ends what we can believe
    client = hop;
    if (!rt.trustedForwarders.has(hop)) break;
  }
  return client;
}

function deny(status: number, code: string, message: string): Decision {
  return { kind: 'deny', status, code, message };
}

/** locate: a source in no location is denied unless unknown sources must authenticate. */
const locate: Step = (tx) => {
  if (tx.match !== null || tx.rt.config.unknownSources === 'authenticate') return null;
  return deny(403, 'unknown_source', `This proxy does not serve your address (${tx.clientIp}).`);
};

/** loop: our own Via token in the request means it came around again. */
const loop: Step = (tx, headers) => {
  const via = headers.via;
  if (via !== undefined && via.toLowerCase().includes(tx.rt.viaToken)) {
    return deny(403, 'loop_detected', 'The request has already passed through this proxy (forwarding loop).');
  }
  return null;
};

/**
 * connectPort: tunnels only to configured ports (443 by default), as Squid's SSL_ports. Our own
 * hosts on 443 are never dialled out (they are terminated here), so the list does not govern them.
 */
const connectPort: Step = (tx) => {
  if (tx.protocol !== 'TUNNEL' || tx.rt.connectPorts.has(tx.port)) return null;
  if (tx.port === 443 && isOwnHost(tx.rt, tx.host)) return null;
  return deny(403, 'port_not_allowed', `Tunnels to port ${tx.port} are not allowed.`);
};

const INSPECT_OWN: Decision = Object.freeze({ kind: 'inspect', reason: 'own_host' });

/** canInspect tells whether this activation can terminate TLS (it has a CA and a leaf minter). */
function canInspect(rt: Runtime): boolean {
  return rt.inspection?.minter != null;
}

/**
 * ownHost: requests for the cloud's hosts are answered by the control-plane app. A tunnel to one
 * is terminated with our own leaf when there is a CA, so the whole sign-in can run over https.
 */
const ownHost: Step = (tx) => {
  if (!isOwnHost(tx.rt, tx.host)) return null;
  if (tx.protocol === 'HTTP') return OWN;
  if (tx.protocol === 'TUNNEL' && canInspect(tx.rt)) return INSPECT_OWN;
  return deny(403, 'own_host_tls', `${tx.host} is served over plain HTTP through the proxy.`);
};

/** inspect: a tunnel the inspection rules select (location, host overrides, do-not-inspect) is terminated. */
const inspect: Step = (tx) => {
  if (tx.protocol !== 'TUNNEL' || !canInspect(tx.rt)) return null;
  const d = tx.rt.inspection!.decide(tx.host, tx.match);
  return d.inspect ? { kind: 'inspect', reason: d.reason } : null;
};

/** requiresSignIn tells whether a client placed in `match` (null: no location) must sign in. */
export function requiresSignIn(rt: Runtime, match: LocationMatch | null): boolean {
  return match === null ? rt.config.unknownSources === 'authenticate' : match.enforceAuthentication;
}

/** required tells whether this transaction's location enforces authentication. */
function required(tx: Transaction): boolean {
  return requiresSignIn(tx.rt, tx.match);
}

/** token: a URL with our one-time token is swapped for a cookie before anything else looks at it. */
const token: Step = (tx) => {
  if (tx.protocol !== 'HTTP' || !tx.url.includes(TOKEN_PARAM) || splitToken(tx.url) === null) return null;
  return TOKEN;
};

/** exempt: authentication exemptions (and every IdP's SSO host) are proxied without identity. */
const exempt: Step = (tx) => {
  const ex = tx.rt.exemptions;
  if (!ex.hosts.matches(tx.host) && !(tx.protocol === 'HTTP' && ex.urls.size > 0 && ex.urls.matches(tx.host, tx.url))) return null;
  tx.action = 'exempt';
  return FORWARD;
};

/** identify: where sign-in is required, attribute the request from memory (cookie, then surrogate). */
const identify: Step = (tx, headers, auth) => {
  if (!required(tx)) return null;
  if (tx.rt.idps.size === 0) return deny(403, 'auth_not_configured', 'This location requires sign-in, and no identity provider is configured.');
  const cookies = tx.protocol === 'TUNNEL' ? NO_COOKIES : readOwnCookies(headers.cookie);
  const browser = isBrowser(headers);
  const navigation = tx.protocol === 'HTTP' && isNavigation(tx.method, headers);
  const who = auth.peek(tx, cookies, browser, navigation);
  if (who === undefined) return { kind: 'lookup', cookies, browser, navigation };
  return identified(tx, who, headers);
};

/** STEPS is the order of decisions; the first decisive step wins. */
export const STEPS: readonly Step[] = [locate, loop, connectPort, token, ownHost, exempt, inspect, identify];

/** attribute puts the user on the transaction, for the access log and whatever serves it. */
export function attribute(tx: Transaction, who: Identity): void {
  tx.identity = who;
  tx.login = who.session.loginName;
  tx.department = who.session.department;
}

/**
 * identified finishes the identify step: forward with the user, or refuse the unidentified. Only a
 * browser page load can be sent to sign in; a tunnel cannot be redirected (browsers drop a CONNECT
 * reply that is not 200), and scripts, other methods and non-browsers get a plain refusal.
 */
export function identified(tx: Transaction, who: Identity | null, headers: IncomingHttpHeaders): Decision {
  if (who !== null) {
    attribute(tx, who);
    return FORWARD;
  }
  const gateway = `${tx.rt.gatewayOrigin}/`;
  if (tx.protocol === 'TUNNEL') {
    return deny(403, 'auth_required', `Sign in first: open any http:// site or ${gateway} in your browser (this tunnel cannot be sent to a login page).`);
  }
  if (tx.protocol === 'WS') return deny(403, 'auth_required', `Sign in first at ${gateway}; WebSocket connections cannot be sent to a login page.`);
  if (isNavigation(tx.method, headers)) return LOGIN;
  if (isFrameLoad(tx.method, headers)) return deny(403, 'auth_required', `Sign in first: open this page in its own tab, or sign in at ${gateway}.`);
  const why = !isBrowser(headers) ? 'this client is not a browser' : tx.method !== 'GET' && tx.method !== 'HEAD' ? `${tx.method} requests cannot be sent to a login page` : 'scripted requests cannot be sent to a login page';
  return deny(403, 'auth_required', `Sign in first at ${gateway} (${why}).`);
}

/** decide runs the steps for one transaction. */
export function decide(tx: Transaction, headers: IncomingHttpHeaders, auth: Identifier): Decision {
  for (let i = 0; i < STEPS.length; i++) {
    const d = STEPS[i]!(tx, headers, auth);
    if (d !== null) return d;
  }
  return FORWARD;
}
