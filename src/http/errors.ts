/**
 * errors: the one place that turns a failure into what a client sees.
 *
 * Every error has a status, a stable code and a one-line message. Browsers get a small HTML page,
 * API clients (Accept: application/json) get JSON, everything else plain text. Nothing internal
 * (stack traces, errno strings with paths) is ever shown.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { isLingering, lingerAfter, lingerClose } from './linger.js';

/** HttpError is an error a handler returns or throws; the renderer turns it into a response. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** escapeHtml makes text safe inside HTML element content and quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => escapes[c]!);
}

type Format = 'html' | 'json' | 'text';

function pickFormat(headers: IncomingHttpHeaders): Format {
  const accept = headers.accept ?? '';
  if (accept.includes('application/json') || accept.includes('application/scim+json')) return 'json';
  if (accept.includes('text/html')) return 'html';
  return 'text';
}

/** errorBody renders the body and content type for one error in the requested format. */
export function errorBody(status: number, code: string, message: string, format: Format): { type: string; body: string } {
  const title = `${status} ${STATUS_CODES[status] ?? 'Error'}`;
  switch (format) {
    case 'json':
      return { type: 'application/json', body: JSON.stringify({ error: { status, code, message } }) + '\n' };
    case 'html':
      return {
        type: 'text/html; charset=utf-8',
        body:
          `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
          `<body style="font-family:sans-serif;max-width:40em;margin:3em auto">` +
          `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>` +
          `<p><small>Tollgate error code: <code>${escapeHtml(code)}</code></small></p></body></html>\n`,
      };
    default:
      return { type: 'text/plain; charset=utf-8', body: `${title}\n${message}\ncode: ${code}\n` };
  }
}

/** sendError writes an error response, or tears the connection down when headers already went out. */
export function sendError(req: { headers: IncomingHttpHeaders; method?: string | undefined }, res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { type, body } = errorBody(err.status, err.code, err.message, pickFormat(req.headers));
  // An error that answers before the body arrived closes the connection, lingering (RFC 9112 §9.6).
  lingerAfter(res);
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-tollgate-error': err.code,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** rawErrorResponse builds a complete HTTP/1.1 response for raw sockets (CONNECT, parse errors, caps). */
export function rawErrorResponse(status: number, code: string, message: string, extraHeaders = ''): string {
  const { type, body } = errorBody(status, code, message, 'text');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nX-Tollgate-Error: ${code}\r\n${extraHeaders}Connection: close\r\n\r\n${body}`
  );
}

/** clientErrorOf is what a request the HTTP parser refused gets: 431, 408 or 400. */
export function clientErrorOf(err: NodeJS.ErrnoException): HttpError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpError(431, 'header_too_large', 'The request header is too large.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpError(408, 'request_timeout', 'The request header was not received in time.');
    default:
      return new HttpError(400, 'bad_request', 'The request is not valid HTTP.');
  }
}

/**
 * answerClientError is a server's 'clientError' handler body: it answers with clientErrorOf's reply
 * and lingers, and returns that error, or null when the socket was already answered or cannot be
 * written (then it is destroyed, unless it is lingering, which ends by itself).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): HttpError | null {
  // The parser reports again (a timeout, the client's FIN) on a socket it already refused.
  if (isLingering(socket)) return null;
  if (!socket.writable) {
    socket.destroy();
    return null;
  }
  const e = clientErrorOf(err);
  lingerClose(socket, rawErrorResponse(e.status, e.code, e.message));
  return e;
}
