/**
 * http1: the HTTP/1.1 wire as the forwarder sees it: llhttp to frame what origins answer, and the
 * request head written as one string.
 *
 * llhttp is the parser node:http itself uses, reached through node:_http_common. Its hooks are checked
 * when this module loads, so a Node whose parser differs stops at start, not at the first request.
 */
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders } from 'node:http';

/** HTTPParser is the part of Node's llhttp binding used here (node:_http_common, as node:http uses it). */
export interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string });
  finish(): undefined | (Error & { code?: string });
  close(): void;
  [hook: number]: ((...args: never[]) => unknown) | undefined;
}
interface ParserClass {
  new (): Parser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

const HTTPParser = (createRequire(import.meta.url)('node:_http_common') as { HTTPParser?: ParserClass }).HTTPParser;
if (
  typeof HTTPParser !== 'function' ||
  typeof HTTPParser.prototype.execute !== 'function' ||
  ![HTTPParser.RESPONSE, HTTPParser.kOnHeaders, HTTPParser.kOnHeadersComplete, HTTPParser.kOnBody, HTTPParser.kOnMessageComplete].every((n) => Number.isInteger(n))
) {
  throw new Error(`this Node (${process.version}) has no llhttp binding in node:_http_common as Node 20-22 have; Tollgate's HTTP forwarder needs it`);
}
/** LLHTTP is the checked parser class: `new LLHTTP()` then `initialize(LLHTTP.RESPONSE, ...)`. */
export const LLHTTP: ParserClass = HTTPParser;
/** MAX_RESPONSE_HEADER_BYTES bounds an origin's response head (Node's own default for node:http). */
export const MAX_RESPONSE_HEADER_BYTES = 16 * 1024;

/** UpstreamRequest is one request to send: its head (cleaned) and its body, if any. */
export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body as a stream (the client's request), with its framing. */
  readonly body: { readonly stream: NodeJS.ReadableStream & { pause(): void; resume(): void }; readonly chunked: boolean } | null;
}

/** coded is an Error with a Node-style code, as the errno table reads it. */
export function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** requestHead is the request line and headers, as one string to write at once; it throws on a value that cannot be sent. */
export function requestHead(req: UpstreamRequest): string {
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  const h = req.headers;
  for (const name in h) {
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      for (const one of v) {
        if (INVALID_VALUE.test(one)) throw coded(`request header ${name} cannot be sent`, 'ERR_INVALID_CHAR');
        head += `${name}: ${one}\r\n`;
      }
    } else {
      if (INVALID_VALUE.test(v)) throw coded(`request header ${name} cannot be sent`, 'ERR_INVALID_CHAR');
      head += `${name}: ${v}\r\n`;
    }
  }
  if (req.body?.chunked === true) head += 'transfer-encoding: chunked\r\n';
  return `${head}\r\n`;
}

/** toHeaders turns llhttp's flat [name, value, ...] list into lower-case keys; a repeated header becomes a list. */
export function toHeaders(raw: readonly string[]): IncomingHttpHeaders {
  // No prototype: an origin's header named `__proto__` or `constructor` is a header like any other.
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    const v = raw[i + 1]!;
    const have = out[k];
    if (have === undefined) out[k] = k === 'set-cookie' ? [v] : v;
    else if (Array.isArray(have)) have.push(v);
    else out[k] = [have, v];
  }
  return out as IncomingHttpHeaders;
}
