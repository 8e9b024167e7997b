/**
 * requestline: what the explicit listener checks about a request's line and framing before any
 * decision is made, and how a request target is written to logs.
 *
 * Node's parser is lenient where a proxy must not be: a bare LF inside the request target ends the
 * line early, so `GET http://h/a\nX-Evil: 1 HTTP/1.1` parses as an HTTP/0.9 request whose rest
 * becomes a header, and a version we do not speak would be silently forwarded as HTTP/1.1. A
 * Transfer-Encoding other than `chunked` is a framing the two ends may read differently (request
 * smuggling, RFC 9112 §6.1 and §11.2). These are refused here, as nginx refuses them.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../http/errors.js';

/** CLOSE goes on every refusal here: after a line or framing we do not trust, nothing more on the connection is read. */
const CLOSE = Object.freeze({ connection: 'close' });

function refuse(status: number, code: string, message: string): HttpError {
  return new HttpError(status, code, message, CLOSE);
}

/** CTL_OR_SPACE matches what may never appear in a request target (RFC 9112 §3.2, RFC 3986). */
const CTL_OR_SPACE = /[\x00-\x20\x7f]/;

/**
 * requestLineError returns the refusal for a request whose line or framing Tollgate does not
 * forward, or null. Every refusal here closes the connection (CLOSE): the body's framing is unknown.
 */
export function requestLineError(req: IncomingMessage): HttpError | null {
  const major = req.httpVersionMajor;
  const minor = req.httpVersionMinor;
  if (major !== 1 || minor > 1) {
    // HTTP/0.9 has no version at all; that is how a bare LF in the target shows up.
    if (major < 1) return refuse(400, 'bad_request_line', 'The request line is not valid HTTP/1.x (a raw CR or LF in the URL?).');
    return refuse(505, 'http_version_not_supported', `HTTP/${major}.${minor} is not supported here; use HTTP/1.1.`);
  }
  if (CTL_OR_SPACE.test(req.url ?? '')) return refuse(400, 'bad_request_line', 'The request target contains a control character or a space.');
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing.
    if (minor === 0) return refuse(400, 'bad_framing', 'Transfer-Encoding is not allowed in an HTTP/1.0 request.');
    // Only exactly one `chunked` (a case-insensitive token, RFC 9110 §10.1.4) is forwarded; `identity,
    // chunked`, a repeated header (joined to `chunked, chunked`) or any other coding is not.
    if (te.trim().toLowerCase() !== 'chunked') return refuse(501, 'unsupported_transfer_coding', 'Only Transfer-Encoding: chunked is supported.');
  }
  return null;
}

/**
 * loggableTarget writes a request target for a log with any userinfo removed, so a password sent
 * in a URL (`http://user:pass@host/`, `user:pass@host:443`) is never written anywhere.
 */
export function loggableTarget(target: string): string {
  const at = target.indexOf('@');
  if (at < 0) return target;
  const scheme = target.indexOf('://');
  const authorityStart = scheme >= 0 ? scheme + 3 : 0;
  // The authority ends at the first '/', '?' or '#' after the scheme; an '@' after that is in the path.
  let end = target.length;
  for (let i = authorityStart; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  const lastAt = target.lastIndexOf('@', end - 1);
  if (lastAt < authorityStart) return target;
  return target.slice(0, authorityStart) + target.slice(lastAt + 1);
}
