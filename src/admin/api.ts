/**
 * api: the ops admin API, JSON under /api/ on the control listener (never through the proxy).
 *
 *   GET  /api/users  /api/groups          User Management, filtered and paged
 *   GET  /api/sessions                    who is signed in, where, how identified, last seen
 *   POST /api/sessions/revoke             one session, a user's, or a location's, on every node
 *   POST /api/reauth                      force re-authentication: one user, or everyone
 *   GET  /api/locations  /api/exemptions  the active locations (with their IdPs) and exemptions (with the IdPs' SSO hosts)
 *   GET  /api/pac?location=&clientIp=     the PAC file a location's browsers get (the default without location)
 *   GET  /api/idps                        each IdP: SP metadata URL, SCIM base URL and token age, certificate expiry
 *   GET  /api/idps/metadata?idp=ID        the SP metadata XML to paste into the IdP
 *   POST /api/idps/scim-token             rotate an IdP's SCIM token (shown once)
 *   GET  /api/explain?url=&clientIp=&user=&browser=1   why a request would be blocked, redirected or let through
 *   POST /api/log/reopen                  reopen a file access log after rotation (as SIGUSR1)
 *
 * Every route passes the AdminGuard; every POST is audited (src/admin/routes.ts).
 */
import type { IncomingMessage } from 'node:http';
import { canonicalIp } from '../config/ip.js';
import { HttpError } from '../http/errors.js';
import { sendBody } from '../http/router.js';
import { parseJson, readBody } from '../scim/body.js';
import { ScimError } from '../scim/errors.js';
import { explain, ssoHostOf } from './explain.js';
import { idpViews } from './idps.js';
import { type AdminDeps, type AdminRoutes, checkIdp, idpParam, pageOf, queryParams, rotateScimToken, sendJson } from './routes.js';
import { listSessions, parseRevokeTarget, parseSessionFilter, revoke } from './sessions.js';
import { listGroups, listUsers, parseUserFilter, tenantsOf } from './users.js';

/** MAX_API_BODY bounds a JSON body of the admin API (a whole config document fits). */
export const MAX_API_BODY = 256 * 1024;

/** readJson reads a request's JSON object body; an empty body is `{}`. Errors are 4xx HttpErrors. */
export async function readJson(req: IncomingMessage, max = MAX_API_BODY): Promise<Record<string, unknown>> {
  try {
    const buf = await readBody(req, max, 10_000);
    return buf.length === 0 ? {} : parseJson(buf);
  } catch (err) {
    if (err instanceof ScimError) throw new HttpError(err.status, err.status === 413 ? 'body_too_large' : 'bad_request', err.message);
    throw err;
  }
}

/** apiRoutes adds the /api/ routes to the admin routes. */
export function apiRoutes(routes: AdminRoutes, deps: AdminDeps): AdminRoutes {
  return routes
    .read('GET', '/api/users', async (req, res, ctx) => {
      const q = queryParams(req);
      const page = pageOf(req);
      const r = await listUsers(deps.directory, ctx.rt.config.orgId, tenantsOf(ctx.rt, q.get('idp')), parseUserFilter(q), page);
      sendJson(req, res, 200, { ...page, ...r });
    })
    .read('GET', '/api/groups', async (req, res, ctx) => {
      const q = queryParams(req);
      const page = pageOf(req);
      const r = await listGroups(deps.directory, ctx.rt.config.orgId, tenantsOf(ctx.rt, q.get('idp')), parseUserFilter(q), page);
      sendJson(req, res, 200, { ...page, ...r });
    })
    .read('GET', '/api/sessions', async (req, res) => {
      const page = pageOf(req);
      const r = await listSessions(deps.sessions, parseSessionFilter(queryParams(req)), page);
      sendJson(req, res, 200, { ...page, ...r });
    })
    .change('POST', '/api/sessions/revoke', 'sessions.revoke', async (req, res, ctx) => {
      const target = parseRevokeTarget(await readJson(req, 4096));
      const revoked = await revoke(deps, ctx.rt, target);
      deps.log.info({ ...target, sessions: revoked }, 'sessions revoked by an admin');
      sendJson(req, res, 200, { ...target, revoked });
      return { target, detail: { revoked } };
    })
    .change('POST', '/api/reauth', 'sessions.reauth', async (req, res, ctx) => {
      const body = await readJson(req, 4096);
      const user = body.user;
      if (!(body.everyone === true && user === undefined) && !(typeof user === 'string' && user !== '' && user.length <= 256 && body.everyone === undefined)) {
        throw new HttpError(400, 'bad_request', 'Give {"user": LOGIN} or {"everyone": true}.');
      }
      const revoked = typeof user === 'string' ? await revoke(deps, ctx.rt, { user }) : await deps.sessions.revokeAll();
      deps.log.info({ user: user ?? '(everyone)', sessions: revoked }, 're-authentication forced');
      sendJson(req, res, 200, { user: user ?? null, revoked });
      return { target: { user: user ?? '*' }, detail: { revoked } };
    })
    .read('GET', '/api/locations', async (req, res, ctx) => {
      const idpsOf = (name: string) => ctx.rt.config.idps.filter((p) => p.locations.some((l) => l.toLowerCase() === name.toLowerCase())).map((p) => p.id);
      sendJson(req, res, 200, { version: ctx.rt.version, unknownSources: ctx.rt.config.unknownSources, locations: ctx.rt.config.locations.map((l) => ({ ...l, idps: idpsOf(l.name) })) });
    })
    .read('GET', '/api/exemptions', async (req, res, ctx) => {
      const sso = ctx.rt.config.idps.map((p) => ({ idp: p.id, host: ssoHostOf(p.ssoUrl) }));
      sendJson(req, res, 200, { version: ctx.rt.version, ...ctx.rt.config.authentication.exemptions, idpSsoHosts: sso });
    })
    .read('GET', '/api/pac', async (req, res, ctx) => {
      // The PAC preview: exactly the text the PAC routes serve, as built and checked at activation.
      const q = queryParams(req);
      const location = q.get('location');
      if (location !== null && !ctx.rt.config.locations.some((l) => l.name.toLowerCase() === location.toLowerCase())) {
        throw new HttpError(404, 'unknown_location', `No location is named "${location.slice(0, 64)}".`);
      }
      const clientIp = q.get('clientIp') ?? '0.0.0.0';
      if (canonicalIp(clientIp) === null) throw new HttpError(400, 'bad_client_ip', 'clientIp must be an IP address.');
      const v = ctx.rt.pac.forLocation(location);
      if (v === null) throw new HttpError(409, 'pac_unavailable', ctx.rt.pac.unavailable ?? 'No PAC file is built.');
      sendJson(req, res, 200, { version: ctx.rt.version, location: location ?? null, pac: v.label, source: v.source, gateways: v.gateways, text: ctx.rt.pac.text(v, clientIp) });
    })
    .read('GET', '/api/idps', async (req, res, ctx) => {
      sendJson(req, res, 200, { idps: await idpViews(ctx.rt, deps.tokens) });
    })
    .read('GET', '/api/idps/metadata', async (req, res, ctx) => {
      const idp = ctx.rt.idps.get(idpParam(ctx.rt, req, false))!;
      sendBody(req, res, 200, 'application/samlmetadata+xml', idp.sp.spMetadataXml(), { 'cache-control': 'no-store' });
    })
    .read('GET', '/api/explain', async (req, res, ctx) => {
      const q = queryParams(req);
      const user = q.get('user');
      const input = { url: q.get('url') ?? '', clientIp: q.get('clientIp') ?? '', browser: q.get('browser') === '1' || q.get('browser') === 'true', ...(user ? { user } : {}), ...(q.get('method') ? { method: q.get('method')! } : {}) };
      sendJson(req, res, 200, await explain(deps, ctx.rt, input));
    })
    .change('POST', '/api/log/reopen', 'log.reopen', async (req, res) => {
      req.resume();
      const reopened = deps.reopenLogs();
      sendJson(req, res, 200, { reopened });
      return { detail: { reopened } };
    })
    .change('POST', '/api/idps/scim-token', 'scim.token.rotate', async (req, res, ctx) => {
      const idp = checkIdp(ctx.rt, (await readJson(req, 4096)).idp, true);
      return rotateScimToken(deps, ctx.rt, idp, req, res);
    });
}
