/**
 * flow: a small browser-like HTTP client that talks through the proxy, keeps host-only cookies,
 * follows redirects, and can sign in at the lab IdP; plus a lab-IdP + Tollgate fixture.
 *
 *   client.follow('http://www.origin-a.test/x') -> 307 gateway -> 302 IdP (login form)
 *   client.signIn(...) -> POST IdP /login -> auto-post form -> POST ACS -> 303 gateway -> 307 ... -> page
 */
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLabIdp, makeSigningPair, type LabIdp, type LabUser } from '../../src/labidp/idp.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { htmlField } from './saml.js';
import type { Reply } from './tollgate.js';

export const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) TollgateTest/1.0';

/** Hop is one response seen while following redirects. */
export interface Hop {
  readonly url: string;
  readonly status: number;
  readonly location?: string;
}

/** FlowResult is where a chain of redirects ended. */
export interface FlowResult {
  readonly url: string;
  readonly reply: Reply;
  readonly hops: Hop[];
}

/**
 * Route says where a routed client's connection for a URL really goes (what routing or an iptables
 * REDIRECT would do to it); the request itself is sent in origin form, as to any web server.
 */
export type Route = (url: URL) => { readonly host: string; readonly port: number };

/**
 * FlowClient behaves like a browser behind the proxy: cookies per host, redirects, forms. With a
 * `route` it is a browser that was never told about a proxy (routed to a transparent listener).
 */
export class FlowClient {
  /** host → cookie name → value */
  readonly jar = new Map<string, Map<string, string>>();

  constructor(
    public proxyPort: number,
    readonly localAddress = '127.0.0.1',
    private readonly headers: Record<string, string> = { 'user-agent': BROWSER_UA, accept: 'text/html' },
    private readonly route?: Route,
  ) {}

  /** request sends one request through the proxy, with this host's cookies, and stores Set-Cookie. */
  request(url: string, opts: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Reply> {
    const u = new URL(url);
    const cookies = this.jar.get(u.hostname);
    const body = opts.form === undefined ? undefined : new URLSearchParams(opts.form).toString();
    const headers: Record<string, string> = { ...this.headers, ...opts.headers };
    if (cookies !== undefined && cookies.size > 0 && opts.headers?.cookie === undefined) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const to = this.route === undefined ? { host: '127.0.0.1', port: this.proxyPort, path: url } : { ...this.route(u), path: `${u.pathname}${u.search}` };
      if (this.route !== undefined) headers.host = u.host;
      const req = http.request(
        { ...to, method: opts.method ?? (body ? 'POST' : 'GET'), headers, localAddress: this.localAddress, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            this.store(u.hostname, res.headers['set-cookie']);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${url}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** follow GETs a URL and follows redirects (up to max), as a browser would. */
  async follow(url: string, opts: { form?: Record<string, string>; max?: number } = {}): Promise<FlowResult> {
    const hops: Hop[] = [];
    let current = url;
    let form = opts.form;
    for (let i = 0; i < (opts.max ?? 15); i++) {
      const reply = await this.request(current, form === undefined ? {} : { form });
      const location = reply.headers.location;
      hops.push({ url: current, status: reply.status, ...(location ? { location } : {}) });
      if (reply.status < 300 || reply.status > 399 || location === undefined) return { url: current, reply, hops };
      current = new URL(location, current).href;
      form = undefined; // 302/303 turn a POST into a GET; we only ever 307 GETs
    }
    throw new Error(`too many redirects: ${JSON.stringify(hops)}`);
  }

  /**
   * signIn starts at `url`, expects to land on the lab IdP's form (or the gateway's login-name form,
   * answered with `username`), signs in, posts the response to the ACS, and follows to the end.
   */
  async signIn(url: string, username: string, password: string): Promise<FlowResult & { idpPage: FlowResult }> {
    const got = await this.obtainResponse(url, username, password);
    const end = await this.follow(got.acsUrl, { form: { SAMLResponse: got.samlResponse, RelayState: got.relayState } });
    return { ...end, idpPage: got.idpPage };
  }

  /**
   * obtainResponse goes from `url` to the IdP (answering the gateway's login-name form with
   * `username` when asked), signs in, and returns what the IdP's auto-post form would send to the ACS.
   */
  async obtainResponse(url: string, username: string, password: string): Promise<{ samlResponse: string; relayState: string; acsUrl: string; idpPage: FlowResult }> {
    let page = await this.follow(url);
    if (htmlField(page.reply.body, 'r') !== null && page.reply.body.includes('name="username"') && !page.reply.body.includes('name="pending"')) {
      page = await this.follow(new URL('/login', page.url).href, { form: { r: htmlField(page.reply.body, 'r')!, username } });
    }
    const pending = htmlField(page.reply.body, 'pending');
    if (pending === null) throw new Error(`expected the IdP's login form at ${page.url}, got ${page.reply.status}: ${page.reply.body.slice(0, 300)}`);
    const posted = await this.request(new URL('/login', page.url).href, { form: { pending, username, password } });
    const acs = /<form method="post" action="([^"]*)"/.exec(posted.body)?.[1];
    const samlResponse = htmlField(posted.body, 'SAMLResponse');
    if (acs === undefined || samlResponse === null) throw new Error(`no auto-post form from the IdP: ${posted.status} ${posted.body.slice(0, 300)}`);
    return { samlResponse, relayState: htmlField(posted.body, 'RelayState') ?? '', acsUrl: acs.replace(/&amp;/g, '&'), idpPage: page };
  }

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name);
  }

  private store(host: string, setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      let jar = this.jar.get(host);
      if (!jar) this.jar.set(host, (jar = new Map()));
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }
}

/** LAB_USERS are the lab IdP's accounts in tests. */
export const LAB_USERS: LabUser[] = [
  { loginName: 'alice@example.com', password: 'alice-pw', displayName: 'Alice Example', department: 'Engineering', groups: ['Engineering', 'VPN Users'] },
  { loginName: 'bob@example.com', password: 'bob-pw', displayName: 'Bob Example', department: 'Sales', groups: ['Sales'] },
  { loginName: 'carol@partner.test', password: 'carol-pw', displayName: 'Carol Partner', department: 'Partners', groups: [] },
];

/** LabIdpFixture is a running lab IdP with its certificate written to a file Tollgate can read. */
export interface LabIdpFixture {
  readonly idp: LabIdp;
  readonly certPath: string;
  /** The IdP's signing pair, for tests that re-sign crafted responses. */
  readonly keyPem: string;
  readonly certPem: string;
  /** config is the `idps` entry for Tollgate. */
  config(extra?: Record<string, unknown>): NonNullable<ConfigInput['idps']>[number];
  /** close stops the IdP and removes its certificate's directory. */
  close(): Promise<void>;
}

/** startLabIdpFixture starts a lab IdP for Tollgate's default ACS on `cloud`. */
export async function startLabIdpFixture(opts: { id?: string; cloud?: string; users?: LabUser[]; orgSpecific?: string; acsScheme?: 'http' | 'https'; host?: string } = {}): Promise<LabIdpFixture> {
  const cloud = opts.cloud ?? 'tollgate.test';
  const pair = makeSigningPair(`Lab IdP ${opts.id ?? 'lab'}`);
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-labidp-'));
  const certPath = join(dir, 'idp.pem');
  writeFileSync(certPath, pair.certPem);
  const idp = await startLabIdp({
    host: opts.host ?? '127.0.0.1',
    port: 0,
    users: opts.users ?? LAB_USERS,
    spEntityId: opts.orgSpecific ? `https://login.${cloud}/sfc_sso/${opts.orgSpecific}` : `https://login.${cloud}/sfc_sso`,
    acsUrl: `${opts.acsScheme ?? 'http'}://login.${cloud}/sfc_sso`,
    keyPem: pair.keyPem,
    certPem: pair.certPem,
  });
  return {
    idp,
    certPath,
    async close() {
      await idp.close();
      rmSync(dir, { recursive: true, force: true });
    },
    keyPem: pair.keyPem,
    certPem: pair.certPem,
    config: (extra = {}) => ({
      id: opts.id ?? 'lab',
      name: `Lab IdP ${opts.id ?? 'lab'}`,
      ssoUrl: idp.ssoUrl,
      certificate: certPath,
      entityId: idp.entityId,
      default: true,
      provisioning: 'jit' as const,
      ...extra,
    }),
  };
}
