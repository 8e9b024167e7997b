/**
 * router: exact-path routing for the control-plane app. Handlers return (or throw) an HttpError
 * and one adapter renders it; a thrown non-HttpError becomes a 500 with no detail for the client.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { HttpError, sendError } from './errors.js';

/** Handler serves one route; the context type is the app's. */
export type Handler<C> = (req: IncomingMessage, res: ServerResponse, ctx: C) => void | Promise<void>;

/** Router maps `path` → method → handler. */
export class Router<C> {
  readonly #routes = new Map<string, Map<string, Handler<C>>>();

  /** on registers a handler; GET routes answer HEAD too. */
  on(method: string, path: string, handler: Handler<C>): this {
    let m = this.#routes.get(path);
    if (!m) this.#routes.set(path, (m = new Map()));
    m.set(method, handler);
    return this;
  }

  /** handle dispatches; false when no route has this path (the caller may try elsewhere). */
  handle(req: IncomingMessage, res: ServerResponse, ctx: C, log: Logger): boolean {
    const q = (req.url ?? '/').indexOf('?');
    const path = q < 0 ? (req.url ?? '/') : (req.url ?? '/').slice(0, q);
    const methods = this.#routes.get(path);
    if (!methods) return false;
    const method = req.method === 'HEAD' && !methods.has('HEAD') ? 'GET' : (req.method ?? 'GET');
    const h = methods.get(method);
    if (!h) {
      sendError(req, res, new HttpError(405, 'method_not_allowed', `${req.method} is not allowed here.`, { allow: [...methods.keys()].join(', ') }));
      return true;
    }
    run(h, req, res, ctx, log);
    return true;
  }
}

/** run calls a handler and renders whatever it throws. */
export function run<C>(h: Handler<C>, req: IncomingMessage, res: ServerResponse, ctx: C, log: Logger): void {
  const fail = (err: unknown) => {
    if (err instanceof HttpError) return sendError(req, res, err);
    log.error({ err, path: req.url }, 'handler failed');
    sendError(req, res, new HttpError(500, 'internal_error', 'Something went wrong on our side.'));
  };
  try {
    const r = h(req, res, ctx);
    if (r instanceof Promise) r.catch(fail);
  } catch (err) {
    fail(err);
  }
}

/** sendRedirect writes an empty, uncached redirect; `headers` may add Set-Cookie or Connection. */
export function sendRedirect(res: ServerResponse, status: number, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...headers, location, 'cache-control': 'no-store', 'content-length': '0' });
  res.end();
}

/** sendBody writes a complete response with a known length. */
export function sendBody(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(req.method === 'HEAD' ? undefined : body);
}
