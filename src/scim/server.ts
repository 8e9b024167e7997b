/**
 * server: the SCIM 2.0 HTTP service (RFC 7644), one per Tollgate, serving every IdP tenant.
 *
 *   IdP -> control listener or scim.<cloud> -> /<orgId>/<idpId>/scim[/v2]/<endpoint>
 *     -> tenant known? (404) -> bearer token (401) -> route (404/405/501) -> rate limit (429, not discovery)
 *     -> body (415/413/408/400) -> Directory -> application/scim+json
 *
 * Handlers throw ScimError (the directory and the pure SCIM modules do too); `fail` renders every error
 * in the RFC 7644 §3.12 schema, the only place that writes an error. Each request is logged once at
 * info with tenant, operation, resource and outcome; bodies and headers never are.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { listMatches, parseEtag } from '../http/etag.js';
import { lingerAfter } from '../http/linger.js';
import { checkConditions, type Directory, type WriteOptions } from '../directory/directory.js';
import { TENANT, type Kind } from '../directory/keys.js';
import type { DirectoryRecord } from '../directory/records.js';
import { StoreUnavailableError } from '../sessions/store.js';
import { GROUP_RESOURCE, USER_RESOURCE, type ResourceTypeDef } from './attributes.js';
import { checkContentType, DEFAULT_BODY_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, parseJson, readBody, ScimReply } from './body.js';
import { RESOURCE_TYPES, SCHEMAS, SERVICE_PROVIDER_CONFIG, withLocation, type Doc } from './discovery.js';
import { ScimError, toScimErrorBody } from './errors.js';
import { applyPatch, buildResource, parsePatchRequest, type ScimResource } from './patch.js';
import { LIST_SCHEMA, listResources, present, searchParams, wants, type Params } from './query.js';
import type { ScimRateLimiter } from './ratelimit.js';
import type { ScimTokens } from './tokens.js';

/** SCIM_CONTENT_TYPE is the media type of every response body (RFC 7644 §3.1). */
export const SCIM_CONTENT_TYPE = 'application/scim+json';

/** ScimOp names an operation for logs and metrics. */
export type ScimOp = 'list' | 'search' | 'get' | 'create' | 'replace' | 'patch' | 'delete' | 'discovery' | 'none';

/** ScimHandlerDeps is what the composition root passes in. */
export interface ScimHandlerDeps {
  readonly directory: Directory;
  readonly tokens: ScimTokens;
  readonly limiter: ScimRateLimiter;
  readonly log: Logger;
  /** tenants tells whether an IdP has SCIM enabled; read per request, so activation takes effect at once. */
  readonly tenants: (orgId: string, idpId: string) => boolean;
  readonly maxBodyBytes?: number;
  readonly bodyTimeoutMs?: number;
  /** origin is the scheme://host of Location and meta.location; by default from the request's Host. */
  readonly origin?: (req: IncomingMessage) => string;
  /** onOperation counts operations by status (metrics). */
  readonly onOperation?: (tenant: string, op: ScimOp, resource: string, status: number) => void;
}

/** ScimHandler serves one request under a SCIM base URL. */
export type ScimHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** ScimPath is a request path split at the base URL `/<orgId>/<idpId>/scim[/v2]`. */
export interface ScimPath {
  readonly orgId: string;
  readonly idpId: string;
  readonly base: string;
  readonly rest: readonly string[];
}

const PATH = /^\/([^/]+)\/([^/]+)\/scim(\/v2)?(?:\/(.*))?$/;

/** matchScimPath splits a path under a SCIM base URL; both `/scim` and `/scim/v2` are bases, as Okta's vary. */
export function matchScimPath(pathname: string): ScimPath | null {
  const m = PATH.exec(pathname);
  if (m === null) return null;
  const [, orgId = '', idpId = '', v2 = '', tail = ''] = m;
  return { orgId, idpId, base: `/${orgId}/${idpId}/scim${v2}`, rest: tail.split('/').filter((s) => s !== '') };
}

type Route =
  | { kind: 'collection'; rt: ResourceTypeDef; name: Kind }
  | { kind: 'search'; rt: ResourceTypeDef; name: Kind }
  | { kind: 'resource'; rt: ResourceTypeDef; name: Kind; id: string }
  | { kind: 'discovery'; endpoint: 'ServiceProviderConfig' | 'ResourceTypes' | 'Schemas'; id: string | undefined };

/** Ctx is what one request has learned so far, for the log line and the metric. */
interface Ctx {
  tenant: string;
  op: ScimOp;
  resource: string;
  id: string | undefined;
  /** outcome is the scimType of a failure, or "error" when it has none. */
  outcome: string | undefined;
  /** unknownTenant is the orgId/idpId of a base URL that has no SCIM service. */
  unknownTenant?: string;
}

const RESOURCES: Record<string, { rt: ResourceTypeDef; name: Kind }> = {
  users: { rt: USER_RESOURCE, name: 'User' },
  groups: { rt: GROUP_RESOURCE, name: 'Group' },
};
const DISCOVERY: Record<string, 'ServiceProviderConfig' | 'ResourceTypes' | 'Schemas'> = {
  serviceproviderconfig: 'ServiceProviderConfig',
  serviceproviderconfigs: 'ServiceProviderConfig',
  resourcetypes: 'ResourceTypes',
  schemas: 'Schemas',
};

function notFound(detail: string): ScimError {
  return new ScimError(404, undefined, detail);
}

function methodNotAllowed(allow: string): ScimReply {
  return new ScimReply(405, undefined, `use ${allow} here`, { allow });
}

/** route resolves the path under the base (endpoint names ignore case) and names the operation; 404/405/501. */
function route(rest: readonly string[], method: string, ctx: Ctx): Route {
  const [first = '', second, third] = rest.map(decode);
  const lower = first.toLowerCase();
  const res = RESOURCES[lower];
  if (res !== undefined && third === undefined) {
    ctx.resource = res.rt.endpoint.slice(1);
    if (second === '.search') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      ctx.op = 'search';
      return { kind: 'search', ...res };
    }
    if (second === undefined) {
      ctx.op = method === 'GET' ? 'list' : method === 'POST' ? 'create' : 'none';
      if (ctx.op === 'none') throw methodNotAllowed('GET, POST');
      return { kind: 'collection', ...res };
    }
    const ops: Record<string, ScimOp> = { GET: 'get', PUT: 'replace', PATCH: 'patch', DELETE: 'delete' };
    ctx.id = second;
    ctx.op = ops[method] ?? 'none';
    if (ctx.op === 'none') throw methodNotAllowed('GET, PUT, PATCH, DELETE');
    return { kind: 'resource', ...res, id: second };
  }
  const disc = DISCOVERY[lower];
  if (disc !== undefined && third === undefined && (second === undefined || disc !== 'ServiceProviderConfig')) {
    ctx.resource = disc;
    if (method !== 'GET') throw methodNotAllowed('GET');
    ctx.op = 'discovery';
    return { kind: 'discovery', endpoint: disc, id: second };
  }
  // RFC 7644 §3.7 (Bulk) and §3.11 (/Me) are optional; an unsupported endpoint answers 501.
  if ((lower === 'bulk' || lower === 'me') && second === undefined) throw new ScimError(501, undefined, `/${first} is not supported`);
  throw notFound(`no SCIM endpoint at /${rest.join('/').slice(0, 100)}`);
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A malformed escape cannot name any resource; leave it as sent, so it simply is not found.
    return segment;
  }
}

/** createScimHandler builds the handler; everything that does not depend on the request is done here. */
export function createScimHandler(deps: ScimHandlerDeps): ScimHandler {
  const { directory, tokens, limiter, log } = deps;
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const bodyTimeout = deps.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const originOf = deps.origin ?? defaultOrigin;

  async function serve(req: IncomingMessage, res: ServerResponse, ctx: Ctx): Promise<void> {
    const { pathname, query: q } = splitTarget(req.url ?? '/');
    const path = matchScimPath(pathname);
    if (path === null) throw notFound('not a SCIM base URL: expected /<orgId>/<idpId>/scim/v2/...');
    const tenant = `${path.orgId}/${path.idpId}`;
    if (!TENANT.test(tenant) || !deps.tenants(path.orgId, path.idpId)) {
      // Logged, but not a metric label: the client chose it, so it could be anything.
      ctx.unknownTenant = tenant.slice(0, 100);
      throw notFound(`no SCIM service for "${ctx.unknownTenant}": check the orgId/idpId in the base URL`);
    }
    ctx.tenant = tenant;
    await authenticate(req, tenant);
    const method = req.method ?? 'GET';
    const r = route(path.rest, method, ctx);
    const base = originOf(req) + path.base;

    if (r.kind === 'discovery') return send(res, 200, discovery(r.endpoint, r.id, base));
    // Discovery is not limited; everything else counts against the tenant's budget (ZIA: 5 req/s).
    const decision = await limiter.check(tenant);
    if (!decision.allowed) {
      throw new ScimReply(429, undefined, 'too many requests for this IdP; retry after the Retry-After delay', {
        'retry-after': String(decision.retryAfterSeconds),
      });
    }
    const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? await readJson(req) : undefined;
    // Parameter names are matched ignoring case, as attribute names are (RFC 7644 §3.4.2, RFC 7643 §2.1).
    const param = (name: string): string | undefined => {
      for (const [k, v] of q) if (k.toLowerCase() === name) return v;
      return undefined;
    };
    const view: Params = { attributes: param('attributes'), excludedAttributes: param('excludedattributes') };
    const conditions: WriteOptions = { ifMatch: req.headers['if-match'], ifNoneMatch: req.headers['if-none-match'] };
    const out = (rec: DirectoryRecord, status: number, extra: Record<string, string> = {}): void =>
      send(res, status, present(rec, base, view), { etag: rec.etag, ...extra });

    switch (r.kind) {
      case 'search':
        return send(res, 200, await listResources(directory, tenant, r.name, searchParams(body), base));
      case 'collection': {
        if (ctx.op === 'list') {
          const p: Params = { ...view, filter: param('filter'), startIndex: param('startindex'), count: param('count') };
          return send(res, 200, await listResources(directory, tenant, r.name, p, base));
        }
        const input = buildResource(r.rt, body);
        const rec = r.name === 'User' ? await directory.createUser(tenant, input) : await directory.createGroup(tenant, input);
        ctx.id = rec.id;
        // RFC 7644 §3.3: 201 with the resource, and Location equal to meta.location.
        return out(rec, 201, { location: `${base}${r.rt.endpoint}/${rec.id}` });
      }
      case 'resource': {
        const { id, rt } = r;
        if (ctx.op === 'get') {
          const rec = await directory.get(tenant, r.name, id, { expand: wants(rt, view) });
          if (rec === null) throw notFound(`${r.name} ${id} not found`);
          return conditionalGet(res, rec, conditions, () => out(rec, 200));
        }
        if (ctx.op === 'delete') {
          await (r.name === 'User' ? directory.deleteUser(tenant, id, conditions) : directory.deleteGroup(tenant, id, conditions));
          return send(res, 204, undefined);
        }
        let mutate: (cur: ScimResource) => ScimResource;
        if (ctx.op === 'replace') {
          // RFC 7644 §3.5.1: PUT replaces; read-only attributes echoed back (id, meta, groups) are ignored.
          mutate = (cur) => buildResource(rt, body, cur);
        } else {
          const ops = parsePatchRequest(body);
          mutate = (cur) => applyPatch(cur, ops, { resourceType: rt });
        }
        const rec = r.name === 'User' ? await directory.updateUser(tenant, id, mutate, conditions) : await directory.updateGroup(tenant, id, mutate, conditions);
        return out(rec, 200);
      }
    }
  }

  async function authenticate(req: IncomingMessage, tenant: string): Promise<void> {
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(req.headers.authorization ?? '');
    if (m === null) {
      throw new ScimReply(401, undefined, 'a bearer token is required', { 'www-authenticate': 'Bearer realm="SCIM"' });
    }
    if (!(await tokens.verify(tenant, m[1] as string))) {
      // RFC 6750 §3.1: invalid_token for a token that is wrong, revoked or for another tenant.
      throw new ScimReply(401, undefined, 'the bearer token is not valid for this SCIM base URL', {
        'www-authenticate': 'Bearer realm="SCIM", error="invalid_token"',
      });
    }
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    checkContentType(req.headers['content-type']);
    return parseJson(await readBody(req, maxBody, bodyTimeout));
  }

  return (req, res) => {
    const started = performance.now();
    const ctx: Ctx = { tenant: '-', op: 'none', resource: '-', id: undefined, outcome: undefined };
    serve(req, res, ctx)
      .catch((err: unknown) => fail(res, err, ctx))
      .then(() => {
        const status = res.statusCode;
        const outcome = status < 400 ? 'ok' : (ctx.outcome ?? 'error');
        const ms = Math.round(performance.now() - started);
        const { tenant, unknownTenant, op, resource, id } = ctx;
        log.info({ tenant, unknownTenant, op, resource, id, status, outcome, ms }, 'scim');
        deps.onOperation?.(ctx.tenant, ctx.op, ctx.resource, status);
      })
      .catch((err: unknown) => {
        // Rendering or reporting failed (a throwing metrics hook): log it; never an unhandled rejection.
        log.error({ err, tenant: ctx.tenant }, 'scim response failed');
        if (!res.writableEnded) res.destroy();
      });
  };

  /** fail is the one error renderer: RFC 7644 §3.12 body, status as a string, and the error's headers. */
  function fail(res: ServerResponse, err: unknown, ctx: Ctx): void {
    let e = err;
    if (err instanceof StoreUnavailableError) {
      log.warn({ err, tenant: ctx.tenant, op: ctx.op }, 'scim: store unavailable');
      e = new ScimReply(503, undefined, 'the directory is unavailable; retry later', { 'retry-after': '5' });
    } else if (!(err instanceof ScimError)) {
      log.error({ err, tenant: ctx.tenant, op: ctx.op, resource: ctx.resource }, 'scim request failed');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = toScimErrorBody(e);
    const headers: Record<string, string> = e instanceof ScimReply ? { ...e.headers } : {};
    ctx.outcome = body.scimType ?? 'error';
    // A body not read to its end (413, 408, or an error before reading it): close, lingering (RFC 9112 §9.6).
    lingerAfter(res);
    send(res, Number(body.status), body, headers);
  }
}

/**
 * conditionalGet answers a GET of one resource under its conditions (RFC 9110 §13.2.2, RFC 7644 §3.14):
 * If-Match that names another version is 412; If-None-Match that names this representation's entity
 * tag (weak comparison, RFC 9110 §13.1.2) or `*` is 304 with the ETag and no body (RFC 9110 §15.4.5);
 * otherwise `ok` sends the resource.
 */
function conditionalGet(res: ServerResponse, rec: DirectoryRecord, conditions: WriteOptions, ok: () => void): void {
  checkConditions(rec.kind, rec.id, rec.version, { ifMatch: conditions.ifMatch });
  const current = parseEtag(rec.etag);
  if (conditions.ifNoneMatch !== undefined && current !== null && listMatches(conditions.ifNoneMatch, current)) {
    // A 304 carries the headers a 200 would have that describe the representation: ETag, Cache-Control.
    res.writeHead(304, { etag: rec.etag, 'cache-control': 'no-store' });
    res.end();
    return;
  }
  ok();
}

/** send writes a complete SCIM response; a 204 has no body (RFC 9110 §15.3.5). */
function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status, { 'cache-control': 'no-store', ...headers });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': SCIM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** discovery answers the RFC 7644 §4 endpoints. */
function discovery(endpoint: 'ServiceProviderConfig' | 'ResourceTypes' | 'Schemas', id: string | undefined, base: string): unknown {
  if (endpoint === 'ServiceProviderConfig') return withLocation(SERVICE_PROVIDER_CONFIG, `${base}/ServiceProviderConfig`);
  const docs: ReadonlyMap<string, Doc> = endpoint === 'ResourceTypes' ? RESOURCE_TYPES : SCHEMAS;
  const located = (key: string, doc: Doc) => withLocation(doc, `${base}/${endpoint}/${key}`);
  if (id !== undefined) {
    const doc = docs.get(id);
    if (doc === undefined) throw notFound(`no ${endpoint} "${id.slice(0, 100)}"`);
    return located(id, doc);
  }
  const all = [...docs].map(([key, doc]) => located(key, doc));
  return { schemas: [LIST_SCHEMA], totalResults: all.length, itemsPerPage: all.length, startIndex: 1, Resources: all };
}

/**
 * splitTarget splits a request target into path and query by hand: `new URL` would read a path that
 * starts with `//` as an authority. An absolute-form target (a request that came through the proxy,
 * RFC 9112 §3.2.2) keeps only its path and query.
 */
function splitTarget(target: string): { pathname: string; query: URLSearchParams } {
  let t = target;
  const abs = /^https?:\/\/[^/?#]*/i.exec(t);
  if (abs !== null) t = t.slice(abs[0].length) || '/';
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const qi = t.indexOf('?');
  return { pathname: qi < 0 ? t : t.slice(0, qi), query: new URLSearchParams(qi < 0 ? '' : t.slice(qi + 1)) };
}

const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** defaultOrigin is scheme://host of the request; a Host that is not a plain host[:port] is not echoed. */
function defaultOrigin(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  const scheme = (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
  return `${scheme}://${HOST.test(host) ? host : 'localhost'}`;
}
