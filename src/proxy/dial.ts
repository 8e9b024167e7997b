/**
 * dial: every upstream connection goes through here, for HTTP (via UpstreamAgent) and CONNECT alike.
 *
 *   Proxy -> resolve (static hosts | `.invalid` | DNS) -> refuse our own listeners -> TCP connect
 *
 * Resolution and the self check happen together, so a name that resolves to one of our own
 * listeners is refused as a loop no matter how it was spelled.
 */
import { Agent, type AgentOptions } from 'node:http';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { normalizeIp } from '../config/ip.js';

/** Resolver picks addresses for a host name before DNS (the runtime's static hosts map). */
export type StaticHosts = () => ReadonlyMap<string, string>;

/** SelfGuard knows the addresses Tollgate listens on, so upstream connections to them are refused. */
export class SelfGuard {
  readonly #listeners: { host: string; port: number }[] = [];
  #local: Set<string> | null = null;

  /** add records a bound listener (after listen, so port 0 is already resolved). */
  add(host: string, port: number): void {
    this.#listeners.push({ host: normalizeIp(host), port });
  }

  /** isSelf tells whether ip:port reaches one of our listeners. */
  isSelf(ip: string, port: number): boolean {
    const addr = normalizeIp(ip);
    for (const l of this.#listeners) {
      if (l.port !== port) continue;
      if (l.host === addr) return true;
      if (l.host === '0.0.0.0' || l.host === '::') {
        if (this.#localAddresses().has(addr) || addr === '0.0.0.0' || addr === '::') return true;
      }
    }
    return false;
  }

  #localAddresses(): Set<string> {
    if (this.#local === null) {
      const s = new Set<string>(['127.0.0.1', '::1']);
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) s.add(normalizeIp(a.address));
      this.#local = s;
    }
    return this.#local;
  }
}

/** LoopError is raised when an upstream target is Tollgate itself. */
export class LoopError extends Error {
  readonly code = 'ELOOP_SELF';
  constructor(target: string) {
    super(`${target} is this proxy's own listener`);
  }
}

/** DialOptions is the narrow set of things a dial needs. */
export interface DialOptions {
  readonly hosts: StaticHosts;
  readonly self: SelfGuard;
}

function notFound(host: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${host}`);
  err.code = 'ENOTFOUND';
  return err;
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * makeLookup returns a net `lookup` for one destination port: static hosts first, `.invalid`
 * answered locally (RFC 6761 §6.4: such names never resolve), then DNS; and a self check.
 */
function makeLookup(opts: DialOptions, port: number) {
  return (hostname: string, options: { all?: boolean } & object, cb: LookupCb): void => {
    const name = hostname.toLowerCase();
    const finish = (address: string, family: number) => {
      if (opts.self.isSelf(address, port)) return cb(new LoopError(`${hostname}:${port}`), address, family);
      if (options.all) cb(null, [{ address, family }]);
      else cb(null, address, family);
    };
    const fixed = opts.hosts().get(name);
    if (fixed !== undefined) return finish(fixed, net.isIP(fixed));
    if (name === 'invalid' || name.endsWith('.invalid')) return cb(notFound(hostname), '', 4);
    if (name === 'localhost' || name.endsWith('.localhost')) return finish('127.0.0.1', 4);
    dnsLookup(hostname, { all: false }, (err, address, family) => {
      if (err) return cb(err, '', 4);
      finish(address, family);
    });
  };
}

/** dial opens a TCP connection to host:port through the resolver and the self check. */
export function dial(opts: DialOptions, host: string, port: number, extra: net.NetConnectOpts | object = {}): net.Socket {
  if (net.isIP(host) !== 0) {
    if (opts.self.isSelf(host, port)) {
      const s = new net.Socket();
      process.nextTick(() => s.destroy(new LoopError(`${host}:${port}`)));
      return s;
    }
    return net.connect({ ...extra, host, port });
  }
  return net.connect({ ...extra, host, port, lookup: makeLookup(opts, port) as unknown as net.LookupFunction });
}

/** UpstreamAgent is the shared keep-alive agent for HTTP to origins; it dials through `dial`. */
export class UpstreamAgent extends Agent {
  readonly #opts: DialOptions;
  constructor(opts: DialOptions, agentOptions: AgentOptions) {
    super(agentOptions);
    this.#opts = opts;
  }
  override createConnection(options: net.NetConnectOpts & { host?: string; port?: number | string }): net.Socket {
    const port = Number(options.port ?? 80);
    return dial(this.#opts, options.host ?? 'localhost', port, options);
  }
}
