/**
 * runtime: everything the hot path needs, built from one Config off the request path.
 *
 * Activation builds a whole new Runtime and swaps one reference (RuntimeRef). A request reads
 * `ref.current` once and passes that snapshot down, so it never sees two generations.
 */
import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import { parseHostPort } from './config/ip.js';
import { compileLocator, type Locator } from './proxy/locate.js';
import type { IdpRuntime } from './auth/idps.js';
import { compileExemptions, HostMatcher, type Exemptions } from './auth/exempt.js';
import { NO_PAC, type PacFiles } from './pac/files.js';
import type { Inspection } from './tls/inspection.js';

/** Runtime is one immutable generation of compiled config. */
export interface Runtime {
  readonly version: number;
  readonly activatedAt: Date;
  readonly config: Config;
  readonly nodeName: string;
  /** The Via token this node adds; finding it in a request means a forwarding loop. */
  readonly viaToken: string;
  readonly locator: Locator;
  /** Lower-case cloud name; own hosts are it and its subdomains. */
  readonly cloud: string;
  readonly connectPorts: ReadonlySet<number>;
  /** Peers whose X-Forwarded-For is believed (union over locations). */
  readonly trustedForwarders: ReadonlySet<string>;
  /** Static host → address map consulted before DNS. */
  readonly hosts: ReadonlyMap<string, string>;
  /** IdPs by id, with their certificates checked and service providers built. */
  readonly idps: ReadonlyMap<string, IdpRuntime>;
  /** Hosts and URLs proxied without identity (the IdPs' SSO hosts included). */
  readonly exemptions: Exemptions;
  /** Hosts that clstart may land on besides the cloud's own. */
  readonly redirectAllowList: HostMatcher;
  /** The cloud's own host names, precomputed for redirects. */
  readonly gatewayHost: string;
  /** The gateway's origin (`http://gateway.<cloud>`, or https with `authentication.gatewayScheme`). */
  readonly gatewayOrigin: string;
  /** The PAC files, generated and validated at activation. */
  readonly pac: PacFiles;
  /** TLS inspection: rules, CA and leaf minter; null when the runtime was built without it. */
  readonly inspection: Inspection | null;
}

/** buildRuntime compiles a Config; it throws only on bugs, since the Config is already valid. */
export function buildRuntime(
  config: Config,
  version: number,
  idps: ReadonlyMap<string, IdpRuntime> = new Map(),
  pac: PacFiles = NO_PAC,
  inspection: Inspection | null = null,
): Runtime {
  const nodeName = config.nodeName ?? hostname();
  const trusted = new Set<string>();
  for (const loc of config.locations) for (const f of loc.trustedForwarders) trusted.add(f);
  return Object.freeze({
    version,
    activatedAt: new Date(),
    config,
    nodeName,
    viaToken: `tollgate-${nodeName}`.toLowerCase(),
    locator: compileLocator(config.locations),
    cloud: config.cloud.toLowerCase(),
    connectPorts: new Set(config.connectPorts),
    trustedForwarders: trusted,
    hosts: new Map(Object.entries(config.hosts).map(([k, v]) => [k.toLowerCase(), v])),
    idps,
    exemptions: compileExemptions(config.authentication.exemptions.hosts, config.authentication.exemptions.urls, config.idps.map((p) => p.ssoUrl)),
    redirectAllowList: new HostMatcher(config.authentication.redirectAllowList),
    gatewayHost: `gateway.${config.cloud.toLowerCase()}`,
    gatewayOrigin: `${config.authentication.gatewayScheme}://gateway.${config.cloud.toLowerCase()}`,
    pac,
    inspection,
  });
}

/** RuntimeRef holds the current generation; `swap` is the only writer. */
export class RuntimeRef {
  #current: Runtime;
  constructor(initial: Runtime) {
    this.#current = initial;
  }
  get current(): Runtime {
    return this.#current;
  }
  swap(next: Runtime): Runtime {
    const prev = this.#current;
    this.#current = next;
    return prev;
  }
}

/** isOwnHost tells whether a (lower-case, port-free) host is Tollgate's own: the cloud or a subdomain. */
export function isOwnHost(rt: Runtime, host: string): boolean {
  const c = rt.cloud;
  return host === c || (host.length > c.length && host.endsWith(c) && host.charCodeAt(host.length - c.length - 1) === 46);
}

type HostPort = { host: string; port: number };

/** listenerAddresses gives the listeners as host/port, as the config names them (transparent ones when set). */
export function listenerAddresses(config: Config): { proxy: HostPort; control: HostPort; transparentHttp: HostPort | null; transparentTls: HostPort | null } {
  const l = config.listeners;
  return {
    proxy: parseHostPort(l.proxy)!,
    control: parseHostPort(l.control)!,
    transparentHttp: l.transparentHttp === undefined ? null : parseHostPort(l.transparentHttp)!,
    transparentTls: l.transparentTls === undefined ? null : parseHostPort(l.transparentTls)!,
  };
}
