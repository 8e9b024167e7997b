/**
 * scim: a real SCIM server on 127.0.0.1:0 around createScimHandler, over a real store, plus a small
 * client that speaks to it the way an IdP does (fetch, bearer token, JSON bodies).
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Test } from 'tap';
import pino from 'pino';
import { Directory } from '../../src/directory/directory.js';
import { ScimRateLimiter, type RateLimitOptions } from '../../src/scim/ratelimit.js';
import { createScimHandler, type ScimOp } from '../../src/scim/server.js';
import { SCIM_ERROR_SCHEMA } from '../../src/scim/errors.js';
import { ScimTokens } from '../../src/scim/tokens.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import type { Store } from '../../src/sessions/store.js';

/** Json is a parsed response body; tests read it loosely, as an IdP would. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** Reply is one response: status, headers and the parsed body (undefined when empty). */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Json;
  readonly text: string;
}

/** Lines collects JSON log lines written by pino. */
export class Lines extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    const s = chunk.toString('utf8');
    this.text += s;
    for (const line of s.split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
    cb();
  }
}

/** ScimClient sends requests under one base URL with one token. */
export class ScimClient {
  constructor(
    readonly base: string,
    readonly token: string | undefined,
    readonly contentType = 'application/scim+json',
  ) {}

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { accept: 'application/scim+json', ...headers };
    if (this.token !== undefined) h['authorization'] ??= `Bearer ${this.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] ??= this.contentType;
    }
    const res = await fetch(this.base + path, { method, headers: h, body: payload });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: text === '' ? undefined : JSON.parse(text) };
  }
  get(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.req('GET', path, undefined, headers);
  }
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Reply> {
    return this.req('POST', path, body, headers);
  }
  put(path: string, body: unknown, headers?: Record<string, string>): Promise<Reply> {
    return this.req('PUT', path, body, headers);
  }
  patch(path: string, body: unknown, headers?: Record<string, string>): Promise<Reply> {
    return this.req('PATCH', path, body, headers);
  }
  delete(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.req('DELETE', path, undefined, headers);
  }
}

/** ScimHarnessOptions choose the store (default: embedded in a fresh temp dir) and the limits. */
export interface ScimHarnessOptions {
  readonly dir?: string;
  readonly store?: Store;
  readonly rateLimit?: RateLimitOptions['limit'];
  /**
   * limiter, when given, is the limiter's whole config, passed as is (so without `limit` the limiter's
   * own default applies, and `now` can pin the clock); it takes the place of rateLimit.
   */
  readonly limiter?: RateLimitOptions;
  readonly tenants?: readonly string[];
  readonly maxBodyBytes?: number;
  readonly bodyTimeoutMs?: number;
}

/** ScimHarness is a running SCIM server and what it was built from. */
export interface ScimHarness {
  readonly origin: string;
  readonly dir: string;
  readonly store: Store;
  readonly directory: Directory;
  readonly tokens: ScimTokens;
  readonly revoked: { tenant: string; userId: string; userName: string }[];
  readonly changed: { tenant: string; userIds: readonly string[] }[];
  readonly operations: { tenant: string; op: ScimOp; resource: string; status: number }[];
  readonly logs: Lines;
  /** client makes a client for a tenant ("acme/okta") with a freshly generated token, or the given one. */
  client(tenant: string, opts?: { token?: string | null; v2?: boolean; contentType?: string }): Promise<ScimClient>;
  close(): Promise<void>;
}

/** startScim starts the handler on a real HTTP server on 127.0.0.1:0. */
export async function startScim(opts: ScimHarnessOptions = {}): Promise<ScimHarness> {
  // A directory only for the harness's own store; a given store needs none.
  const ownDir = opts.dir === undefined && opts.store === undefined;
  const dir = opts.dir ?? (ownDir ? await mkdtemp(join(tmpdir(), 'tollgate-scim-')) : '');
  const store = opts.store ?? new EmbeddedStore({ path: dir });
  const revoked: ScimHarness['revoked'] = [];
  const changed: ScimHarness['changed'] = [];
  const operations: ScimHarness['operations'] = [];
  const directory = new Directory({
    store,
    onUserRevoked: (tenant, userId, userName) => void revoked.push({ tenant, userId, userName }),
    onUsersChanged: (tenant, userIds) => void changed.push({ tenant, userIds }),
  });
  const tokens = new ScimTokens(store);
  const limiter = new ScimRateLimiter(store, opts.limiter ?? { limit: opts.rateLimit ?? 0 });
  const logs = new Lines();
  const tenants = new Set(opts.tenants ?? ['acme/okta', 'acme/entra']);
  const handler = createScimHandler({
    directory,
    tokens,
    limiter,
    log: pino({ level: 'info' }, logs),
    tenants: (org, idp) => tenants.has(`${org}/${idp}`),
    maxBodyBytes: opts.maxBodyBytes,
    bodyTimeoutMs: opts.bodyTimeoutMs,
    onOperation: (tenant, op, resource, status) => void operations.push({ tenant, op, resource, status }),
  });
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    dir,
    store,
    directory,
    tokens,
    revoked,
    changed,
    operations,
    logs,
    async client(tenant, o = {}) {
      const token = o.token === null ? undefined : (o.token ?? (await tokens.generate(tenant)));
      return new ScimClient(`${origin}/${tenant}/scim${o.v2 === false ? '' : '/v2'}`, token, o.contentType);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (opts.store === undefined) await store.close();
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** isError checks the RFC 7644 §3.12 error shape: status as a string, scimType when given. */
export function isError(t: Test, r: Reply, status: number, scimType?: string, msg = `${status} ${scimType ?? ''}`): void {
  t.equal(r.status, status, msg);
  t.equal(r.headers.get('content-type'), 'application/scim+json', `${msg}: SCIM media type`);
  t.same(r.body?.schemas, [SCIM_ERROR_SCHEMA], `${msg}: error schema`);
  t.equal(r.body?.status, String(status), `${msg}: status is a string`);
  if (scimType === undefined) t.notOk('scimType' in (r.body ?? {}), `${msg}: no scimType`);
  else t.equal(r.body?.scimType, scimType, `${msg}: scimType`);
  t.type(r.body?.detail, 'string');
}
