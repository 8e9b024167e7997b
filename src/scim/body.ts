/**
 * body: reading a SCIM request body, bounded in size and time, as JSON.
 *
 *   POST/PUT/PATCH -> content type check (415) -> read with a cap (413) and a deadline (408) -> JSON (400)
 *
 * RFC 7644 §3.1 names `application/scim+json`; Okta sends `application/json`, and some PATCH clients
 * `application/json-patch+json`, so all three are accepted, in UTF-8 only (RFC 8259 §8.1).
 */
import type { IncomingMessage } from 'node:http';
import { badRequest, ScimError, type ScimType } from './errors.js';

/** DEFAULT_MAX_BODY_BYTES is the default body limit, 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** DEFAULT_BODY_TIMEOUT_MS bounds how long a client may take to send its body. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

const JSON_TYPES = new Set(['application/scim+json', 'application/json', 'application/json-patch+json']);

/** ScimReply is a ScimError that also sets response headers (WWW-Authenticate, Retry-After, Allow, ...). */
export class ScimReply extends ScimError {
  constructor(
    status: number,
    scimType: ScimType | undefined,
    detail: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(status, scimType, detail);
  }
}

/** checkContentType refuses a body that is not JSON in UTF-8 with 415 (RFC 9110 §15.5.16). */
export function checkContentType(header: string | undefined): void {
  const [type = '', ...params] = (header ?? '').split(';').map((s) => s.trim().toLowerCase());
  if (!JSON_TYPES.has(type)) {
    throw new ScimReply(415, undefined, 'the request body must be application/scim+json or application/json', {
      'accept-patch': 'application/scim+json, application/json, application/json-patch+json',
    });
  }
  for (const p of params) {
    const [name, value = ''] = p.split('=').map((s) => s.trim());
    if (name === 'charset' && value.replace(/"/g, '') !== 'utf-8' && value.replace(/"/g, '') !== 'utf8') {
      throw new ScimReply(415, undefined, 'the request body must be UTF-8');
    }
  }
}

/** tooLarge is the 413 error; the rest of the body is not read, so the reply closes the connection (lingering). */
function tooLarge(max: number): ScimReply {
  return new ScimReply(413, undefined, `the request body is larger than ${max} bytes`);
}

/**
 * readBody reads the whole body, at most `max` bytes within `timeoutMs`. A declared Content-Length over
 * the limit fails before reading; a body that grows past it fails as soon as it does. In both cases the
 * rest is discarded; the reply closes the connection and lingers (http/linger.ts), so the client
 * can read it while it is still sending.
 */
export function readBody(req: IncomingMessage, max: number, timeoutMs: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) return Promise.reject(tooLarge(max));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: Error | null): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err === null) {
        resolve(Buffer.concat(chunks, size));
        return;
      }
      // Discard whatever still arrives, so the socket is not left half-read while the reply goes out.
      req.on('error', () => {
        // The client went away mid-body: nothing is left to answer.
      });
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) stop(tooLarge(max));
      else chunks.push(chunk);
    };
    const onEnd = (): void => stop(null);
    const onError = (err: Error): void => stop(err);
    const onAborted = (): void => stop(new ScimError(400, undefined, 'the client aborted the request'));
    const timer = setTimeout(() => {
      stop(new ScimReply(408, undefined, `the request body did not arrive within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** parseJson parses a body as one JSON object; anything else is 400 invalidSyntax (RFC 7644 §3.12). */
export function parseJson(buf: Buffer): Record<string, unknown> {
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the body; the client gets a fixed detail instead.
    throw badRequest('invalidSyntax', 'the request body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('invalidSyntax', 'the request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
