/**
 * headers: hop-by-hop cleaning and Via, for requests going up and responses coming down.
 *
 * RFC 9110 §7.6.1: Connection and every header it names are for one hop only, as are Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade and the Proxy-* credentials. They are never forwarded.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade'];

function stripConnectionListed(headers: IncomingHttpHeaders | OutgoingHttpHeaders): void {
  const conn = headers.connection;
  if (conn === undefined) return;
  for (const token of String(conn).split(',')) {
    const name = token.trim().toLowerCase();
    // Never let Connection remove framing or the Host: that would desync the next hop.
    if (name !== '' && name !== 'host' && name !== 'content-length' && name !== 'transfer-encoding') delete headers[name];
  }
}

/**
 * cleanRequestHeaders prepares a client's headers for the origin in place. `upgrade` keeps the
 * Connection/Upgrade pair for a WebSocket handshake. Transfer-Encoding stays: Node re-frames the
 * body as chunked on the next hop when the client sent it chunked.
 */
export function cleanRequestHeaders(headers: IncomingHttpHeaders, via: string, authority: string, upgrade: boolean): void {
  const up = upgrade ? headers.upgrade : undefined;
  stripConnectionListed(headers);
  for (const h of HOP_BY_HOP) delete headers[h];
  if (up !== undefined) {
    headers.connection = 'Upgrade';
    headers.upgrade = up;
  }
  // RFC 9112 §3.2.2: a proxy replaces Host with the authority of the absolute-form target.
  headers.host = authority;
  headers.via = headers.via ? `${headers.via}, 1.1 ${via}` : `1.1 ${via}`;
}

/**
 * cleanResponseHeaders builds the headers sent to the client from an origin's. Transfer-Encoding
 * is dropped too: Node picks the framing that suits this client (chunked, or close for HTTP/1.0).
 */
export function cleanResponseHeaders(headers: IncomingHttpHeaders, via: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...headers };
  stripConnectionListed(out);
  for (const h of HOP_BY_HOP) delete out[h];
  delete out['transfer-encoding'];
  out.via = out.via ? `${String(out.via)}, 1.1 ${via}` : `1.1 ${via}`;
  return out;
}
