/**
 * target: reading a request's target into its transaction, for HTTP and WebSocket requests.
 *
 *   absolute form `http://host:port/path`  -> any host (the proxy case)
 *   origin form `/path` + Host             -> only our own hosts (PAC downloads, the status page)
 */
import type { IncomingMessage } from 'node:http';
import { parseHostPort } from '../config/ip.js';
import { HttpError } from '../http/errors.js';
import { isOwnHost, type Runtime } from '../runtime.js';
import type { Transaction } from './pipeline.js';
import { isPacPath } from '../pac/names.js';

/** Target is where a request goes: the authority for Host, and the origin-form path. */
export interface Target {
  readonly authority: string;
  readonly path: string;
}

const NOT_A_PROXY_REQUEST = 'This is a proxy: send absolute-form requests (http://host/path).';

/**
 * parseTarget reads an absolute-form target, or an origin-form request for one of our own hosts,
 * into the transaction (host, port, the URL as logged). Anything else is a 400.
 */
export function parseTarget(req: IncomingMessage, tx: Transaction, rt: Runtime): Target | HttpError {
  const raw = req.url ?? '';
  if (raw.charCodeAt(0) === 47 /* '/' */) {
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
    if (a === null) return new HttpError(400, 'not_a_proxy_request', NOT_A_PROXY_REQUEST);
    tx.host = a.host;
    tx.port = a.port;
    tx.url = `http://${hostHeader}${raw}`;
    tx.originForm = true;
    if (isOwnHost(rt, tx.host)) return { authority: hostHeader, path: raw };
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
  return { authority: url.host, path: `${url.pathname}${url.search}` };
}

/** hasBody tells whether a request announced a body (which a refusal leaves unread). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
