/**
 * pipeline: the ordered decisions for one transaction. Each step is a small named function that
 * returns a Decision or null; the first decision wins. No step writes to a socket.
 *
 *   locate -> loop -> connect port -> own host -> enforce -> forward
 */
import type { IncomingHttpHeaders } from 'node:http';
import { normalizeIp, parseIPv4, parseIPv6Into } from '../config/ip.js';
import { isOwnHost, type Runtime } from '../runtime.js';
import type { Action } from '../log.js';
import type { LocationMatch } from './locate.js';

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
}

/** Decision is what the pipeline concluded. */
export type Decision =
  | { readonly kind: 'deny'; readonly status: number; readonly code: string; readonly message: string }
  | { readonly kind: 'own' }
  | { readonly kind: 'forward' };

type Step = (tx: Transaction, headers: IncomingHttpHeaders) => Decision | null;

const FORWARD: Decision = Object.freeze({ kind: 'forward' });
const OWN: Decision = Object.freeze({ kind: 'own' });
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

/** connectPort: tunnels only to configured ports (443 by default), as Squid's SSL_ports. */
const connectPort: Step = (tx) => {
  if (tx.protocol !== 'TUNNEL' || tx.rt.connectPorts.has(tx.port)) return null;
  return deny(403, 'port_not_allowed', `Tunnels to port ${tx.port} are not allowed.`);
};

/** ownHost: requests for the cloud's hosts are answered by the control-plane app. */
const ownHost: Step = (tx) => {
  if (!isOwnHost(tx.rt, tx.host)) return null;
  if (tx.protocol !== 'HTTP') return deny(403, 'own_host_tls', `${tx.host} is served over plain HTTP through the proxy.`);
  return OWN;
};

/** enforce: a location that requires sign-in cannot be served until an identity provider is set up. */
const enforce: Step = (tx) => {
  const required = tx.match === null ? tx.rt.config.unknownSources === 'authenticate' : tx.match.enforceAuthentication;
  if (!required) return null;
  return deny(403, 'auth_not_configured', 'This location requires sign-in, and no identity provider is configured.');
};

/** STEPS is the order of decisions; the first decisive step wins. */
export const STEPS: readonly Step[] = [locate, loop, connectPort, ownHost, enforce];

/** decide runs the steps for one transaction. */
export function decide(tx: Transaction, headers: IncomingHttpHeaders): Decision {
  for (let i = 0; i < STEPS.length; i++) {
    const d = STEPS[i]!(tx, headers);
    if (d !== null) return d;
  }
  return FORWARD;
}
