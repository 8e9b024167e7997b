/**
 * self: judges whether a destination is one of Tollgate's own listeners, whatever its spelling.
 *
 *   destination (after resolution) -> canonical address -> every address each listener answers on
 *
 * A proxy that can be pointed at itself can be turned against its own control plane (metrics, the
 * admin API) or used to come back in from 127.0.0.1 and leave its location behind. So every
 * address is brought to one canonical form first (IPv4-mapped, -compatible and -translated IPv6,
 * inet_aton spellings), and compared against the set of addresses a listener really answers on: a
 * listener bound to a wildcard answers on every local address (all of 127.0.0.0/8 for 0.0.0.0, and
 * IPv4 too for a dual-stack `::`), and the unspecified addresses `0.0.0.0` and `::` reach the local
 * host when dialled (Linux connects them to loopback), so they count as every listener's address.
 */
import { networkInterfaces } from 'node:os';
import { canonicalIp, parseIPv4 } from '../config/ip.js';

/** LOCAL_REFRESH_MS bounds how stale the cached interface addresses may be (addresses can change at run time). */
const LOCAL_REFRESH_MS = 5000;

interface Listener {
  /** Canonical bound address. */
  readonly host: string;
  readonly port: number;
  /** A dual-stack `::` listener also answers IPv4 (Node's default unless ipv6Only). */
  readonly dualStack: boolean;
}

/** isUnspecified tells whether a canonical address is 0.0.0.0 (or in 0.0.0.0/8) or `::`. */
function isUnspecified(a: string): boolean {
  return a === '::' || a.startsWith('0.');
}

function isIPv4(a: string): boolean {
  return parseIPv4(a) >= 0;
}

/** SelfGuard knows the addresses Tollgate listens on, so upstream connections to them are refused. */
export class SelfGuard {
  readonly #listeners: Listener[] = [];
  readonly #ports = new Set<number>();
  #local: Set<string> | null = null;
  #localAt = 0;
  readonly #interfaces: () => ReturnType<typeof networkInterfaces>;

  /** `interfaces` is injectable so tests can give the host more addresses than this machine has. */
  constructor(interfaces: () => ReturnType<typeof networkInterfaces> = networkInterfaces) {
    this.#interfaces = interfaces;
  }

  /** add records a bound listener (after listen, so port 0 is already resolved). */
  add(host: string, port: number, opts: { ipv6Only?: boolean } = {}): void {
    const canon = canonicalIp(host) ?? host.toLowerCase();
    this.#listeners.push({ host: canon, port, dualStack: canon === '::' && opts.ipv6Only !== true });
    this.#ports.add(port);
  }

  /** isSelf tells whether dialling ip:port reaches one of our listeners. An unparsable address is not judged here. */
  isSelf(ip: string, port: number): boolean {
    if (!this.#ports.has(port)) return false; // the common case costs one Set lookup
    const addr = canonicalIp(ip);
    if (addr === null) return false;
    if (isUnspecified(addr)) return true;
    for (const l of this.#listeners) {
      if (l.port !== port) continue;
      if (l.host === addr) return true;
      if (l.host === '0.0.0.0' && isIPv4(addr) && this.#isLocal(addr)) return true;
      if (l.host === '::' && (isIPv4(addr) ? l.dualStack : true) && this.#isLocal(addr)) return true;
    }
    return false;
  }

  /** #isLocal: is a canonical address one this host answers on (loopback nets, or an interface's)? */
  #isLocal(addr: string): boolean {
    if (addr.startsWith('127.') || addr === '::1') return true;
    const now = Date.now();
    if (this.#local === null || now - this.#localAt > LOCAL_REFRESH_MS) {
      const s = new Set<string>();
      for (const list of Object.values(this.#interfaces())) {
        for (const a of list ?? []) {
          const c = canonicalIp(a.address);
          if (c !== null) s.add(c);
        }
      }
      this.#local = s;
      this.#localAt = now;
    }
    return this.#local.has(addr);
  }
}
