/**
 * dial: every upstream connection goes through here, for HTTP (via UpstreamAgent), CONNECT and
 * WebSocket alike.
 *
 *   Proxy -> resolve (IP literal in any spelling | static hosts | `.invalid` | DNS, every address)
 *         -> refuse our own listeners -> TCP connect -> check the address really connected to
 *
 * The self check is made on resolved, canonical addresses, and the address checked is the one
 * handed to connect (there is no second resolution), so neither another spelling nor a DNS answer
 * that changes between two lookups (rebinding) gets a connection to one of our own listeners. Once
 * connected, the socket's real peer is checked once more.
 */
import { Agent, type AgentOptions } from 'node:http';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net from 'node:net';
import { canonicalIp } from '../config/ip.js';
import { SelfGuard } from './self.js';

export { SelfGuard };

/** StaticHosts picks addresses for a host name before DNS (the runtime's static hosts map). */
export type StaticHosts = () => ReadonlyMap<string, string>;

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
  /** resolve answers every address of a name (DNS by default; tests give their own answers). */
  readonly resolve?: Resolve;
}

/** Resolve looks up every address of a host name. */
export type Resolve = (hostname: string, cb: (err: NodeJS.ErrnoException | null, addresses: readonly string[]) => void) => void;

const systemResolve: Resolve = (hostname, cb) =>
  dnsLookup(hostname, { all: true }, (err, addresses) => (err ? cb(err, []) : cb(null, addresses.map((a) => a.address))));

function notFound(host: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${host}`);
  err.code = 'ENOTFOUND';
  return err;
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/**
 * makeLookup returns a net `lookup` for one destination port: static hosts first, `.invalid`
 * answered locally (RFC 6761 §6.4: such names never resolve), `localhost` as loopback (§6.3),
 * then DNS. Every address a name resolves to is judged: if any is one of our listeners the dial
 * is refused, so a name cannot mix a good address with ours and hope for the order.
 */
function makeLookup(opts: DialOptions, port: number) {
  return (hostname: string, options: { all?: boolean } & object, cb: LookupCb): void => {
    // A name and its fully qualified spelling (`localhost.`) are one name.
    const lower = hostname.toLowerCase();
    const name = lower.endsWith('.') ? lower.slice(0, -1) : lower;
    const finish = (addresses: readonly string[]) => {
      const list: LookupAddress[] = [];
      for (const a of addresses) {
        const canon = canonicalIp(a) ?? a;
        if (opts.self.isSelf(canon, port)) return cb(new LoopError(`${hostname}:${port}`), a, familyOf(a));
        list.push({ address: canon, family: familyOf(canon) });
      }
      if (list.length === 0) return cb(notFound(hostname), '', 4);
      if (options.all) cb(null, list);
      else cb(null, list[0]!.address, list[0]!.family);
    };
    const fixed = opts.hosts().get(name);
    if (fixed !== undefined) return finish([fixed]);
    if (name === 'invalid' || name.endsWith('.invalid')) return cb(notFound(hostname), '', 4);
    if (name === 'localhost' || name.endsWith('.localhost')) return finish(['127.0.0.1']);
    (opts.resolve ?? systemResolve)(hostname, (err, addresses) => {
      if (err) return cb(err, '', 4);
      finish(addresses);
    });
  };
}

/** refused is a socket that fails with a LoopError on the next tick, as a refused connect would. */
function refused(target: string): net.Socket {
  const s = new net.Socket();
  process.nextTick(() => s.destroy(new LoopError(target)));
  return s;
}

/** dial opens a TCP connection to host:port through the resolver and the self check. */
export function dial(opts: DialOptions, host: string, port: number, extra: net.NetConnectOpts | object = {}): net.Socket {
  // An IP literal in any spelling (`2130706433`, `0x7f.1`, `::ffff:7f00:1`) is dialled as its canonical address.
  const literal = canonicalIp(host);
  if (literal !== null) {
    if (opts.self.isSelf(literal, port)) return refused(`${host}:${port}`);
    // The socket connects to exactly this address, which was just judged: no second look needed.
    return net.connect({ ...extra, host: literal, port });
  }
  return judgePeer(opts, host, port, net.connect({ ...extra, host, port, lookup: makeLookup(opts, port) as unknown as net.LookupFunction }));
}

/**
 * dialReading is dial for a tunnel's upstream: half-open allowed, no Nagle, and every read lands in
 * the caller's buffer (net's `onread`).
 *
 * Its net.connect options are one literal, not `dial(..., { allowHalfOpen, noDelay, onread })`'s
 * spread. Under the bench's CONNECT load (after its keep-alive and new-connection loads), the
 * spread left closed tunnels and their sockets outliving young collections: about 48 KB promoted
 * per scavenge and a full collection every 1.6 s, against about 3 KB and none with the literal,
 * and the tunnel cost about 12 µs more CPU. Building the literal in dial for every caller, the HTTP
 * forwarder's pooled connections too, was worse than either (about 190 KB a scavenge). What in V8
 * ties the two together is not pinned down; the measurement is what this rests on, and
 * `bench/profile.ts --scenario connect --before keepalive,newconn --gc` shows it.
 */
export function dialReading(opts: DialOptions, host: string, port: number, onread: net.OnReadOpts): net.Socket {
  const literal = canonicalIp(host);
  if (literal !== null) {
    if (opts.self.isSelf(literal, port)) return refused(`${host}:${port}`);
    return net.connect({ host: literal, port, allowHalfOpen: true, noDelay: true, onread });
  }
  return judgePeer(opts, host, port, net.connect({ host, port, lookup: makeLookup(opts, port) as unknown as net.LookupFunction, allowHalfOpen: true, noDelay: true, onread }));
}

/**
 * judgePeer judges the address a name actually connected to once more, before any byte is written
 * (its listener runs before the ones a writer adds, which is where queued writes are flushed).
 */
function judgePeer(opts: DialOptions, host: string, port: number, socket: net.Socket): net.Socket {
  socket.once('connect', () => {
    const peer = socket.remoteAddress;
    if (peer !== undefined && opts.self.isSelf(peer, socket.remotePort ?? port)) socket.destroy(new LoopError(`${host}:${port}`));
  });
  return socket;
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
