/**
 * target: reading a request's target into its transaction, for HTTP and WebSocket requests.
 *
 *   explicit door:   absolute form `http://host:port/path`  -> any host (the proxy case)
 *                    origin form `/path` + Host             -> only our own hosts (PAC downloads, the status page)
 *   other doors:     origin form `/path` + Host             -> the host the connection was going to
 *                    (decrypted: `https://`, the Host must name the tunnel's host; transparent: `http://`)
 */
import type { IncomingMessage } from 'node:http';
import { parseHostPort } from '../config/ip.js';
import { HttpError } from '../http/errors.js';
import { isOwnHost, type Runtime } from '../runtime.js';
import type { Transaction } from './pipeline.js';
import type { Arrival } from './txlog.js';
import { isPacPath } from '../pac/names.js';

/** Target is where a request goes: the authority for Host, and the origin-form path. */
export interface Target {
  readonly authority: string;
  readonly path: string;
  /** The scheme the client used; `https` only for a request decrypted from an inspected tunnel. */
  readonly scheme: 'http' | 'https';
  /** Where to connect when it is not tx.host:tx.port (the intercepted connection's destination). */
  readonly dial?: { readonly host: string; readonly port: number };
}

const NOT_A_PROXY_REQUEST = 'This is a proxy: send absolute-form requests (http://host/path).';

/**
 * parseTarget reads an absolute-form target, or an origin-form request for one of our own hosts,
 * into the transaction (host, port, the URL as logged). Anything else is a 400.
 */
export function parseTarget(req: IncomingMessage, tx: Transaction, rt: Runtime, arrival: Arrival): Target | HttpError {
  if (arrival.door !== 'explicit') return interceptedTarget(req, tx, arrival);
  const raw = req.url ?? '';
  if (raw.charCodeAt(0) === 47 /* '/' */) {
    if (isPacPath(raw.split('?')[0]!)) {
      // A PAC download sent straight to us (http://<proxy>:<port>/proxy.pac) is pac.<cloud>'s; the
      // locate step still refuses sources in no location.
      tx.host = `pac.${rt.cloud}`;
      tx.port = 80;
      tx.url = `http://${req.headers.host ?? tx.host}${raw}`;
      return { authority: tx.host, path: raw, scheme: 'http' };
    }
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    const a = parseHostPort(hostHeader.includes(':') || hostHeader.startsWith('[') ? hostHeader : `${hostHeader}:80`);
    if (a === null) return new HttpError(400, 'not_a_proxy_request', NOT_A_PROXY_REQUEST);
    tx.host = a.host;
    tx.port = a.port;
    tx.url = `http://${hostHeader}${raw}`;
    tx.originForm = true;
    if (isOwnHost(rt, tx.host)) return { authority: hostHeader, path: raw, scheme: 'http' };
    return new HttpError(400, 'not_a_proxy_request', NOT_A_PROXY_REQUEST);
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
  return { authority: url.host, path: `${url.pathname}${url.search}`, scheme: 'http' };
}

/**
 * interceptedTarget reads a request that reached us without a proxy's request line: decrypted from
 * an inspected tunnel, or routed to a transparent listener. It names its destination only in Host
 * (an absolute-form target of the same scheme is taken too, RFC 9112 §3.2.2). When the door knows
 * the connection's destination, the request goes there, and a Host naming another host than the
 * tunnel's is refused (421): the policy was decided for that host, and its certificate was made for it.
 */
function interceptedTarget(req: IncomingMessage, tx: Transaction, arrival: Arrival): Target | HttpError {
  const scheme = arrival.tls?.decrypted === true ? 'https' : 'http';
  const defaultPort = scheme === 'https' ? 443 : 80;
  let path = req.url ?? '';
  let hostHeader = (req.headers.host ?? '').toLowerCase();
  if (path.charCodeAt(0) !== 47 /* '/' */) {
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      return new HttpError(400, 'bad_url', 'The request URL is not valid.');
    }
    if (url.protocol !== `${scheme}:`) return new HttpError(400, 'unsupported_scheme', `Scheme ${url.protocol} is not served on this connection.`);
    if (url.username !== '' || url.password !== '') return new HttpError(400, 'credentials_in_url', 'URLs with credentials are not proxied.');
    hostHeader = url.host;
    path = `${url.pathname}${url.search}`;
  }
  if (hostHeader === '') return new HttpError(400, 'missing_host', 'The request has no Host header, so its destination is unknown.');
  const a = parseHostPort(hostHeader.includes(':') && !hostHeader.endsWith(']') ? hostHeader : `${hostHeader}:${arrival.originalPort ?? defaultPort}`);
  if (a === null || a.port === 0) return new HttpError(400, 'bad_host', 'The Host header is not a valid host[:port].');
  const tunnel = arrival.tunnel;
  tx.host = a.host.endsWith('.') ? a.host.slice(0, -1) : a.host;
  tx.port = tunnel?.port ?? a.port;
  tx.url = `${scheme}://${hostHeader}${path}`;
  if (tunnel !== undefined && tunnel.name !== '' && tx.host !== tunnel.name) {
    return new HttpError(421, 'misdirected_request', `This connection was made for ${tunnel.name}, not ${tx.host}.`);
  }
  const authority = hostHeader;
  return tunnel === undefined ? { authority, path, scheme } : { authority, path, scheme, dial: { host: tunnel.host, port: tunnel.port } };
}

/** hasBody tells whether a request announced a body (which a refusal leaves unread). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
