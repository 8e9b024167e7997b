/**
 * schema: the shape of Tollgate's config file and every default, in one place.
 *
 * Secure defaults live here: unknown sources are denied, CONNECT only reaches 443, the control
 * listener binds loopback, and every socket has a timeout.
 */
import { z } from 'zod';
import { parseCidr, ipToBigInt, parseHostPort } from './ip.js';
import { DEFAULT_SCIM_RATE_LIMIT } from './shape.js';

const hostnameRe = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** cidr accepts `a.b.c.d/n`, IPv6 CIDRs and bare addresses. */
const cidr = z.string().superRefine((v, ctx) => {
  const r = parseCidr(v);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

const ipAddress = z.string().refine((v) => ipToBigInt(v) !== null, { message: 'is not an IP address' });

/** hostPort accepts `host:port` and `[v6]:port`. */
const hostPort = z.string().superRefine((v, ctx) => {
  if (parseHostPort(v) === null) ctx.addIssue({ code: 'custom', message: `"${v}" is not host:port` });
});


const ms = (def: number, min = 1) => z.number().int().min(min).max(24 * 3600 * 1000).default(def);

/** inspectionMode: TLS inspection of a location's CONNECT tunnels; a sublocation without one inherits its location's. */
const inspectionMode = z.enum(['off', 'on']);

const sublocation = z.strictObject({
  name: z.string().min(1).max(64),
  ips: z.array(cidr).min(1),
  enforceAuthentication: z.boolean().optional(),
  inspection: inspectionMode.optional(),
});

/**
 * surrogate is a location's IP-surrogate policy, as ZIA's location settings: once a user signs in,
 * (location, client IP) maps to their session until the IP has been idle for idleMs.
 */
const surrogate = z.strictObject({
  enabled: z.boolean().default(false),
  /** Idle time to disassociation. */
  idleMs: ms(2 * 3600_000, 60_000),
  /** Use the surrogate for browsers too (otherwise browsers are identified by cookie). */
  enforceForKnownBrowsers: z.boolean().default(false),
  /** With enforceForKnownBrowsers: a browser's cookie is re-checked through the gateway this often. */
  refreshMs: ms(3600_000, 60_000),
});
const SURROGATE_DEFAULTS = { enabled: false, idleMs: 2 * 3600_000, enforceForKnownBrowsers: false, refreshMs: 3600_000 };

/** hostPattern is an exact host, `*.example.com` (any subdomain) or `.example.com` (the domain and its subdomains). */
const hostPattern = z.string().superRefine((v, ctx) => {
  const bare = v.startsWith('*.') ? v.slice(2) : v.startsWith('.') ? v.slice(1) : v;
  if (!hostnameRe.test(bare)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a host pattern (host, *.domain or .domain)` });
});

/** urlPattern is an http(s) URL matched exactly (query ignored), or a prefix when it ends with `*`. */
const urlPattern = z.string().superRefine((v, ctx) => {
  const body = v.endsWith('*') ? v.slice(0, -1) : v;
  let ok = false;
  try {
    const u = new URL(body);
    ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.search === '' && u.hash === '' && !body.slice(8).includes('*');
  } catch {
    ok = false;
  }
  if (!ok) ctx.addIssue({ code: 'custom', message: `"${v}" is not a URL pattern (http://host/path, optionally ending in *)` });
});

const authentication = z.strictObject({
  /** How often users sign in again, as ZIA's authentication frequency. */
  frequency: z.enum(['once', 'daily', 'perSession', 'customDays']).default('daily'),
  /** Days between sign-ins when frequency is customDays. */
  customDays: z.number().int().min(1).max(180).default(1),
  /** Domain cookies are replaced this often (through the gateway, invisibly to the user). */
  cookieRotateMs: ms(12 * 3600_000, 60_000),
  /** Time a user has to finish signing in at the IdP. */
  loginTimeoutMs: ms(10 * 60_000, 10_000),
  /** Hosts and URLs proxied without identity. The IdPs' own SSO hosts are always exempt. */
  exemptions: z
    .strictObject({ hosts: z.array(hostPattern).default([]), urls: z.array(urlPattern).default([]) })
    .default({ hosts: [], urls: [] }),
  /** Hosts (exact, *.domain or .domain) that clstart may land on besides the cloud's own. */
  redirectAllowList: z.array(hostPattern).default([]),
  /**
   * How browsers reach the gateway and the ACS: `http` (as ZIA), or `https`, served inside TLS with
   * a leaf from the inspection CA (which must then exist), so the whole sign-in runs over https.
   */
  gatewayScheme: z.enum(['http', 'https']).default('http'),
});
const AUTHENTICATION_DEFAULTS = {
  frequency: 'daily' as const,
  customDays: 1,
  cookieRotateMs: 12 * 3600_000,
  loginTimeoutMs: 10 * 60_000,
  exemptions: { hosts: [], urls: [] },
  redirectAllowList: [],
  gatewayScheme: 'http' as const,
};

const location = z.strictObject({
  name: z.string().min(1).max(64),
  ips: z.array(cidr).min(1),
  enforceAuthentication: z.boolean().default(false),
  surrogate: surrogate.default(SURROGATE_DEFAULTS),
  trustedForwarders: z.array(ipAddress).default([]),
  sublocations: z.array(sublocation).default([]),
  inspection: inspectionMode.default('off'),
});

const store = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('embedded'), path: z.string().min(1).default('./data') }),
  z.strictObject({
    type: z.literal('redis'),
    url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
    cluster: z.array(hostPort).min(1).optional(),
    sentinel: z
      .strictObject({ name: z.string().min(1), hosts: z.array(hostPort).min(1), db: z.number().int().min(0).optional() })
      .optional(),
    keyPrefix: z.string().max(64).default('tollgate:'),
    commandTimeoutMs: ms(1000),
  }),
]);

/**
 * idp mirrors ZIA's "Add IdP" window. Certificates and keys are file paths (relative paths are
 * resolved against the config file's folder); they are read and checked at activation.
 */
const idp = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -'),
  name: z.string().min(1).max(128),
  /** SAML portal URL (Okta's "Sign on URL"). */
  ssoUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL'),
  /** PEM file of the IdP's signing certificate. */
  certificate: z.string().min(1),
  /** The IdP's entity ID: the Issuer every response must carry. */
  entityId: z.string().min(1).max(1024),
  loginNameAttribute: z.string().min(1).max(256).default('NameID'),
  attributes: z
    .strictObject({
      displayName: z.string().min(1).default('DisplayName'),
      groups: z.string().min(1).default('memberOf'),
      department: z.string().min(1).default('Department'),
    })
    .default({ displayName: 'DisplayName', groups: 'memberOf', department: 'Department' }),
  orgSpecificEntityId: z.boolean().default(false),
  signRequest: z.boolean().default(false),
  /** SP key and certificate (PEM files), needed only when signRequest is on. */
  spKey: z.string().min(1).optional(),
  spCert: z.string().min(1).optional(),
  wantResponseSigned: z.boolean().default(true),
  wantAssertionsSigned: z.boolean().default(true),
  clockSkewMs: z.number().int().min(0).max(600_000).default(60_000),
  /** The default IdP serves any domain; every other IdP must map at least one. */
  default: z.boolean().default(false),
  domains: z.array(z.string().regex(hostnameRe, 'is not a domain')).default([]),
  locations: z.array(z.string().min(1)).default([]),
  /** jit: SAML auto-provisioning; scim: the IdP provisions users through SCIM. Never both. */
  provisioning: z.enum(['jit', 'scim']).default('jit'),
  /** SCIM requests per second for this IdP's tenant (ZIA's service allows 5); 0 turns the limit off. */
  scimRateLimit: z.number().int().min(0).max(100_000).default(DEFAULT_SCIM_RATE_LIMIT),
});

/**
 * labIdp runs the lab SAML IdP inside Tollgate (NOT FOR PRODUCTION). With no IdPs configured, it
 * becomes the default IdP with JIT provisioning, so a fresh install shows the whole sign-in flow.
 */
const labIdp = z.strictObject({
  enabled: z.boolean().default(false),
  listen: hostPort.default('127.0.0.1:9402'),
  /** Users file (YAML or JSON): login name, password, display name, department, groups. */
  users: z.string().min(1).default('examples/lab-users.yaml'),
  /** Folder for the IdP's signing key and certificate, kept across restarts. */
  keys: z.string().min(1).default('./data/lab-idp'),
});

/**
 * pacBypass is one entry of the PAC's bypass list (the browser goes DIRECT, never through Tollgate):
 * a host, `*.domain`, `.domain`, or an IPv4 address or CIDR. PAC's isInNet is IPv4 only, so IPv6
 * ranges cannot be written portably; private IPv6 literals go DIRECT through privateRangesDirect.
 */
const pacBypass = z.string().superRefine((v, ctx) => {
  const bare = v.startsWith('*.') ? v.slice(2) : v.startsWith('.') ? v.slice(1) : v;
  if (/^[0-9./]+$/.test(v)) {
    const c = parseCidr(v);
    if (typeof c === 'string') ctx.addIssue({ code: 'custom', message: c });
  } else if (v.includes(':')) {
    ctx.addIssue({ code: 'custom', message: `"${v}": IPv6 addresses cannot be bypassed by a PAC file (isInNet is IPv4 only)` });
  } else if (!hostnameRe.test(bare)) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a host, *.domain, .domain, IPv4 address or IPv4 CIDR` });
  }
});

/** pacGateway is a proxy a PAC file names: `host:port` with a real port. */
const pacGateway = hostPort.refine((v) => parseHostPort(v)?.port !== 0, { message: 'needs a port other than 0' });

/** pacFile is a custom PAC file's path (relative to the config file's folder). */
const pacFile = z.string().min(1).max(1024);

/**
 * pac is what the generated PAC files say. gateways are the primary and its secondaries in order;
 * without them the proxy listener's address is used. Every value ends up in script text, so each is
 * validated here and escaped again by the generator.
 */
const pac = z.strictObject({
  gateways: z.array(pacGateway).max(16).default([]),
  /** Per-location gateways (and optionally a location's own custom PAC file). */
  locations: z
    .array(z.strictObject({ name: z.string().min(1).max(64), gateways: z.array(pacGateway).min(1).max(16).optional(), file: pacFile.optional() }))
    .default([]),
  /** At most 2,000 entries: the generated file stays under the 256 KiB that ZIA allows a PAC file. */
  bypass: z.array(pacBypass).max(2000).default([]),
  /** Plain host names (no dot) go DIRECT. */
  plainHostsDirect: z.boolean().default(true),
  /** Private, link-local and loopback IP literals go DIRECT. */
  privateRangesDirect: z.boolean().default(true),
  /** A custom PAC file served instead of the generated one (variables ${GATEWAY} etc. substituted). */
  file: pacFile.optional(),
});
const PAC_DEFAULTS = { gateways: [], locations: [], bypass: [], plainHostsDirect: true, privateRangesDirect: true };

/**
 * inspection configures TLS inspection with Tollgate's CA (off everywhere by default). File paths
 * are relative to the config file's folder. Hosts on doNotInspect and the authentication-exempt
 * hosts (the IdPs' included) are never inspected; `hosts` overrides a location's setting per host and
 * may trust a lab origin's own CA for those hosts only.
 */
const inspection = z.strictObject({
  caCert: z.string().min(1).default('certs/ca/ca.crt'),
  caKey: z.string().min(1).default('certs/ca/ca.key'),
  /** With no CA at caCert/caKey, make a lab CA there, labelled NOT FOR PRODUCTION (the embedded lab default). */
  labCa: z.boolean().default(false),
  /** Pinned apps and anything else that must stay a plain tunnel. */
  doNotInspect: z.array(hostPattern).default([]),
  hosts: z
    .array(
      z
        .strictObject({
          match: z.array(hostPattern).min(1),
          inspect: inspectionMode.optional(),
          /** PEM file of the CA a lab origin's certificate chains to, trusted for these hosts only. */
          upstreamCa: z.string().min(1).optional(),
        })
        .refine((h) => h.inspect !== undefined || h.upstreamCa !== undefined, { message: 'sets neither inspect nor upstreamCa' }),
    )
    .default([]),
  /** PEM bundle of CAs trusted for upstream servers besides the public roots and the system's. */
  upstreamCaBundle: z.string().min(1).optional(),
  /**
   * The system's CA bundle, trusted upstream with Node's bundled public roots (where an admin installs
   * corporate roots): unset finds Debian's, Red Hat's or Alpine's file; a path names it; false turns it off.
   */
  systemCaBundle: z.union([z.string().min(1), z.literal(false)]).optional(),
  /** Leaves certify one key made at start: ECDSA P-256 (cheapest handshakes) or RSA-2048 (oldest clients). */
  leafKey: z.enum(['ecdsa-p256', 'rsa2048']).default('ecdsa-p256'),
  /** Browsers accept at most 398 days; leaves are backdated a day, so at most 396. */
  leafValidityDays: z.number().int().min(1).max(396).default(30),
  /**
   * What an inspected tunnel whose first bytes are not TLS becomes: closed with a log line, or
   * passed on as a plain tunnel (a non-TLS protocol on an inspected port).
   */
  nonTls: z.enum(['close', 'tunnel']).default('close'),
  /** Hosts whose leaf stays in memory. */
  leafCacheSize: z.number().int().min(16).max(1_000_000).default(4096),
});

const limits = z.strictObject({
  /** Largest request head a client may send (bytes); beyond it the client gets 431. */
  maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(32 * 1024),
  /** Time a client has to send a complete request head. */
  headersTimeoutMs: ms(15_000),
  /** A client connection idle this long is closed (keep-alive and tunnels alike). */
  clientIdleTimeoutMs: ms(120_000),
  /** Time an origin has to connect and send response headers; past it the client gets 504. */
  upstreamTimeoutMs: ms(30_000),
  /** An upstream connection idle this long (mid-body or in a tunnel) is closed. */
  upstreamIdleTimeoutMs: ms(120_000),
  /** Concurrent connections one client IP may hold; more get 429. */
  maxConnectionsPerIp: z.number().int().min(1).max(100_000).default(512),
  /** Time SIGTERM waits for in-flight work before closing what is left. */
  shutdownGraceMs: ms(10_000, 0),
});

export const configSchema = z
  .strictObject({
    /** Tollgate's own domain: gateway.<cloud>, login.<cloud>, ip.<cloud>, pac.<cloud>, scim.<cloud>. */
    cloud: z.string().regex(hostnameRe, 'is not a host name').default('tollgate.test'),
    orgId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -').default('1'),
    /** Name of this node on the status page, in logs and in Via. Defaults to the host name. */
    nodeName: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ., _ or -').optional(),
    listeners: z
      .strictObject({
        proxy: hostPort.default('127.0.0.1:9400'),
        control: hostPort.default('127.0.0.1:9401'),
        /** Origin-form HTTP routed or REDIRECTed here: destination from Host, or the original destination. */
        transparentHttp: hostPort.optional(),
        /** TLS routed or REDIRECTed here: destination from the ClientHello's SNI; spliced or inspected. */
        transparentTls: hostPort.optional(),
      })
      .default({ proxy: '127.0.0.1:9400', control: '127.0.0.1:9401' }),
    store: store.default({ type: 'embedded', path: './data' }),
    /** Worker processes sharing this node's listeners, each a full data plane; `auto` is one per core. */
    workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
    locations: z.array(location).default([]),
    idps: z.array(idp).default([]),
    unknownSources: z.enum(['deny', 'authenticate']).default('deny'),
    authentication: authentication.default(AUTHENTICATION_DEFAULTS),
    labIdp: labIdp.optional(),
    connectPorts: z.array(z.number().int().min(1).max(65535)).min(1).default([443]),
    /** Static name → address map consulted before DNS (lab setups, /etc/hosts style). */
    hosts: z.record(z.string().regex(hostnameRe, 'is not a host name'), ipAddress).default({}),
    pac: pac.default(PAC_DEFAULTS),
    limits: limits.default(limits.parse({})),
    inspection: inspection.default(inspection.parse({})),
    /**
     * transparent: what the transparent TLS listener does with a connection whose ClientHello names no
     * host (or that is not TLS): close it with a log line, or tunnel it to the original destination
     * the kernel kept after a REDIRECT (closed anyway when there is none).
     */
    transparent: z.strictObject({ withoutSni: z.enum(['close', 'originalDestination']).default('close') }).default({ withoutSni: 'close' }),
    logging: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        /** Where access-log lines go: `stdout` or a file path. */
        accessLog: z.string().min(1).default('stdout'),
        /** json: Tollgate's fields as JSON; nss: a ZIA NSS web-log feed line (tab-delimited). */
        format: z.enum(['json', 'nss']).default('json'),
      })
      .default({ level: 'info', accessLog: 'stdout', format: 'json' }),
    /** The admin API's client side: where the CLI keeps its token (default: beside the data directory). */
    admin: z.strictObject({ tokenFile: z.string().min(1).optional() }).default({}),
  })
  .superRefine((c, ctx) => {
    const names = new Map<string, number>();
    c.locations.forEach((loc, i) => {
      const key = loc.name.toLowerCase();
      if (names.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['locations', i, 'name'], message: `duplicates locations[${names.get(key)}].name "${loc.name}"` });
      } else names.set(key, i);
      const parents = loc.ips.map((p) => parseCidr(p));
      loc.sublocations.forEach((sub, j) => {
        sub.ips.forEach((ip, k) => {
          const inner = parseCidr(ip);
          if (typeof inner === 'string') return;
          const inside = parents.some((p) => typeof p !== 'string' && p.family === inner.family && inner.start >= p.start && inner.end <= p.end);
          if (!inside) {
            ctx.addIssue({ code: 'custom', path: ['locations', i, 'sublocations', j, 'ips', k], message: `"${ip}" is outside location "${loc.name}"` });
          }
        });
      });
    });
    const idpIds = new Map<string, number>();
    const locNames = new Set(c.locations.map((l) => l.name.toLowerCase()));
    const domains = new Map<string, string>();
    c.idps.forEach((p, i) => {
      if (idpIds.has(p.id)) ctx.addIssue({ code: 'custom', path: ['idps', i, 'id'], message: `duplicates idps[${idpIds.get(p.id)}].id "${p.id}"` });
      else idpIds.set(p.id, i);
      if (!p.default && p.domains.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['idps', i, 'domains'], message: 'an IdP that is not the default must map at least one authentication domain' });
      }
      if (p.signRequest && (p.spKey === undefined || p.spCert === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['idps', i, 'signRequest'], message: 'signing requests needs spKey and spCert' });
      }
      p.locations.forEach((l, j) => {
        if (!locNames.has(l.toLowerCase())) ctx.addIssue({ code: 'custom', path: ['idps', i, 'locations', j], message: `no location is named "${l}"` });
      });
      p.domains.forEach((d, j) => {
        const owner = domains.get(d.toLowerCase());
        if (owner !== undefined) ctx.addIssue({ code: 'custom', path: ['idps', i, 'domains', j], message: `"${d}" is already mapped to IdP "${owner}"` });
        else domains.set(d.toLowerCase(), p.id);
      });
    });
    const defaults = c.idps.filter((p) => p.default).length;
    if (c.idps.length > 0 && defaults !== 1) ctx.addIssue({ code: 'custom', path: ['idps'], message: `exactly one IdP must be the default (found ${defaults})` });
    const pacLocations = new Set<string>();
    c.pac.locations.forEach((l, i) => {
      const key = l.name.toLowerCase();
      if (!locNames.has(key)) ctx.addIssue({ code: 'custom', path: ['pac', 'locations', i, 'name'], message: `no location is named "${l.name}"` });
      if (pacLocations.has(key)) ctx.addIssue({ code: 'custom', path: ['pac', 'locations', i, 'name'], message: `"${l.name}" is listed twice` });
      pacLocations.add(key);
    });
    const neverInspected = new Set(c.inspection.doNotInspect.map((p) => p.toLowerCase()));
    c.inspection.hosts.forEach((h, i) => {
      h.match.forEach((p, j) => {
        if (h.inspect === 'on' && neverInspected.has(p.toLowerCase())) {
          ctx.addIssue({ code: 'custom', path: ['inspection', 'hosts', i, 'match', j], message: `"${p}" is also on doNotInspect, which wins` });
        }
      });
    });
    if (c.store.type === 'redis') {
      const forms = [c.store.url, c.store.cluster, c.store.sentinel].filter((x) => x !== undefined).length;
      if (forms !== 1) ctx.addIssue({ code: 'custom', path: ['store'], message: 'redis needs exactly one of url, cluster, sentinel' });
    }
  });

/** ConfigInput is what a file may contain; Config is the validated, defaulted, frozen result. */
export type ConfigInput = z.input<typeof configSchema>;
type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
export type Config = DeepReadonly<z.output<typeof configSchema>>;
export type LocationConfig = Config['locations'][number];
export type SublocationConfig = LocationConfig['sublocations'][number];
export type IdpConfig = Config['idps'][number];
export type SurrogateConfig = LocationConfig['surrogate'];
export type AuthenticationConfig = Config['authentication'];
export type PacConfig = Config['pac'];
export type InspectionConfig = Config['inspection'];
