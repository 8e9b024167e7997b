/**
 * headers: hop-by-hop cleaning and Via, for requests going up and responses coming down.
 *
 * RFC 9110 §7.6.1: Connection and every header it names are for one hop only, as are Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade and the Proxy-* credentials. They are never forwarded.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade'];

/** connectionListed reads the names a Connection header makes hop-by-hop (never framing or the Host). */
function connectionListed(conn: string | string[]): Set<string> {
  const names = new Set<string>();
  for (const token of String(conn).split(',')) {
    const name = token.trim().toLowerCase();
    // Never let Connection remove framing or the Host: that would desync the next hop.
    if (name !== '' && name !== 'host' && name !== 'content-length' && name !== 'transfer-encoding') names.add(name);
  }
  return names;
}

function stripConnectionListed(headers: IncomingHttpHeaders): void {
  const conn = headers.connection;
  if (conn === undefined) return;
  for (const name of connectionListed(conn)) delete headers[name];
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

/** RESPONSE_DROP is every header a response never carries on to the client (Transfer-Encoding: see below). */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'transfer-encoding']);

/**
 * cleanResponseHeaders builds the headers sent to the client from an origin's. Transfer-Encoding
 * is dropped too: Node picks the framing that suits this client (chunked, or close for HTTP/1.0).
 * It copies only what is kept (one pass, no deletes), as it runs once per response.
 */
export function cleanResponseHeaders(headers: IncomingHttpHeaders, via: string): OutgoingHttpHeaders {
  const listed = headers.connection === undefined ? null : connectionListed(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (RESPONSE_DROP.has(name) || (listed !== null && listed.has(name))) continue;
    out[name] = headers[name];
  }
  out.via = out.via ? `${String(out.via)}, 1.1 ${via}` : `1.1 ${via}`;
  return out;
}
