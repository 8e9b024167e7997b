/**
 * serve: answers a PAC or WPAD download, on the control listener, on pac.<cloud> through the proxy,
 * and for origin-form requests sent straight to the proxy listener.
 *
 *   Browser -> GET http://pac.<cloud>/proxy.pac (through the proxy) ----+
 *   Browser -> GET /proxy.pac (straight to the proxy listener) ---------+--> servePac
 *   Browser -> GET http://<control>/wpad.dat ----------------------------+
 *
 * The text was built at activation; this only picks it. `no-cache` makes browsers revalidate, so an
 * activated change reaches them on their next PAC fetch.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../http/errors.js';
import { sendBody } from '../http/router.js';
import type { Runtime } from '../runtime.js';
import { PAC_CONTENT_TYPE } from './files.js';

/** servePac writes the PAC for `path` and this client; it throws HttpError for what cannot be served. */
export function servePac(req: IncomingMessage, res: ServerResponse, rt: Runtime, clientIp: string, location: string | null): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed here.`, { allow: 'GET, HEAD' });
  const path = (req.url ?? '/').split('?')[0]!;
  const v = rt.pac.select(path, location);
  if (v === null) throw new HttpError(503, 'pac_unavailable', `No PAC file is configured: ${rt.pac.unavailable ?? 'set pac.gateways'}.`);
  sendBody(req, res, 200, PAC_CONTENT_TYPE, rt.pac.text(v, clientIp), { 'cache-control': 'no-cache' });
}
