/**
 * guard: who may call the admin API.
 *
 *   request -> network layer (loopback peer, loopback Host, no web page) -> 403 admin_*
 *           -> bearer token (RFC 6750 §2.1)                              -> 401 admin_token_*
 *           -> the token's name, for the audit log
 *
 * The network checks are the second layer: they keep a web page in a browser on this machine from
 * driving the API (CSRF) or reading it through a rebound DNS name, even with a token in hand.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../http/errors.js';
import type { AdminTokens } from './tokens.js';

const LOOPBACK = /^(127\.|::1$)/;

/** REALM opens the WWW-Authenticate value of every 401 (RFC 6750 §3). */
const REALM = 'Bearer realm="tollgate-admin"';

/** AdminGuard checks one admin request and names its caller. */
export class AdminGuard {
  constructor(private readonly tokens: AdminTokens) {}

  /** authorize returns the name of the caller's admin token, or throws the 403/401 to send. */
  async authorize(req: IncomingMessage, peerIp: string): Promise<string> {
    networkCheck(req, peerIp);
    const header = req.headers.authorization ?? '';
    const m = /^Bearer +([^\s]+) *$/i.exec(header);
    if (m === null) {
      throw new HttpError(401, 'admin_token_missing', 'The admin API needs an admin bearer token: create one with "tollgate admin token".', { 'www-authenticate': REALM });
    }
    const name = await this.tokens.verify(m[1]!);
    if (name === null) {
      throw new HttpError(401, 'admin_token_invalid', 'The admin token is not valid (revoked, replaced or mistyped).', { 'www-authenticate': `${REALM}, error="invalid_token"` });
    }
    return name;
  }
}

/**
 * networkCheck: the admin API answers loopback peers only, addressed by a loopback name, with no
 * cross-site Origin (Fetch Metadata: a page's fetch says same-site or cross-site; a CLI sends none).
 */
function networkCheck(req: IncomingMessage, peerIp: string): void {
  if (!LOOPBACK.test(peerIp)) throw new HttpError(403, 'admin_loopback_only', 'The admin API answers loopback clients only.');
  const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
  if (!(host === '' || host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new HttpError(403, 'admin_host', 'The admin API answers requests addressed to a loopback address only.');
  }
  const site = req.headers['sec-fetch-site'];
  if (req.headers.origin !== undefined || (site !== undefined && site !== 'none' && site !== 'same-origin')) {
    throw new HttpError(403, 'admin_cross_site', 'The admin API does not answer requests from web pages.');
  }
}
