/**
 * origdst: the destination a client really dialled, for a connection that an iptables REDIRECT (NAT)
 * sent to a transparent listener.
 *
 *   Client -> dst 10.0.0.5:80 -> [REDIRECT --to-ports 9480] -> Tollgate :9480 -> originalDestination() = 10.0.0.5:80
 *
 * Linux keeps the pre-NAT tuple in conntrack and hands it out through getsockopt(SOL_IP,
 * SO_ORIGINAL_DST) (IPv4) and getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) (IPv6), both in
 * <linux/netfilter_ipv4.h> / <linux/netfilter_ipv6/ip6_tables.h>. Node has no binding for either, so
 * the call goes through koffi (a C FFI that ships prebuilt binaries in its npm packages), loaded on
 * first use only, so a node without transparent listeners never loads it.
 *
 * Fallback: originalDestination() returns null, and the caller takes the destination from Host (HTTP)
 * or SNI (TLS), when
 * - the platform is not Linux, or koffi does not load here (`originalDestinationSupport()` says why);
 * - the socket has no file descriptor (not a TCP socket of this process);
 * - the kernel has no conntrack entry for it (ENOENT: nothing was NATed, e.g. a direct connection in a
 *   namespace without NAT rules);
 * - the original destination is the socket's own local address and port: the client dialled the
 *   listener itself (e.g. `curl --connect-to`), so there is nothing to learn beyond Host/SNI.
 * With TPROXY there is no NAT: the accepted socket's local address already is the original destination,
 * this returns null (same as local), and a TPROXY listener reads `socket.localAddress`/`localPort`.
 */
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import type { Socket } from 'node:net';
import { endianness } from 'node:os';
import { canonicalIp } from '../config/ip.js';

/** OriginalDestination is the address and port the client dialled before NAT. */
export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

// Linux constants: SOL_IP and SOL_IPV6 are the protocol numbers (<netinet/in.h>); SO_ORIGINAL_DST
// and IP6T_SO_ORIGINAL_DST are both 80. AF_INET / AF_INET6 as Linux numbers them (<bits/socket.h>).
const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80;
const IP6T_SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
/** SOCKADDR_BYTES fits a struct sockaddr_in6 (28 bytes), the larger of the two answers. */
const SOCKADDR_BYTES = 28;

type GetSockOpt = (fd: number, level: number, name: number, out: Buffer, len: [number]) => number;

interface Support {
  readonly getsockopt: GetSockOpt | null;
  readonly reason: string;
}

let support: Support | null = null;

/** loadSupport binds getsockopt from libc through koffi once; any failure is remembered as the reason. */
function loadSupport(): Support {
  if (support !== null) return support;
  if (process.platform !== 'linux') {
    support = { getsockopt: null, reason: `SO_ORIGINAL_DST is Linux-only (platform ${process.platform})` };
    return support;
  }
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    // musl and glibc both answer to the name libc.so.6 through their loaders; null would be the
    // main program, which does not always export getsockopt itself.
    const libc = koffi.load('libc.so.6');
    const fn = libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint32_t *len)');
    support = { getsockopt: fn as unknown as GetSockOpt, reason: 'available' };
  } catch (err) {
    support = { getsockopt: null, reason: `koffi could not bind getsockopt: ${(err as Error).message}` };
  }
  return support;
}

/** originalDestinationSupport says whether originalDestination can work here, and if not, why. */
export function originalDestinationSupport(): { readonly available: boolean; readonly reason: string } {
  const s = loadSupport();
  return { available: s.getsockopt !== null, reason: s.reason };
}

/** socketFd is the file descriptor under a net.Socket (undefined or -1 when there is none). */
function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}

/**
 * parseSockaddr reads a struct sockaddr_in or sockaddr_in6 as the kernel wrote it: family in host
 * byte order, port and address in network byte order (RFC 3493 §3.3 for the IPv6 layout).
 */
export function parseSockaddr(buf: Buffer, len: number): OriginalDestination | null {
  if (len < 2) return null;
  const family = endianness() === 'LE' ? buf.readUInt16LE(0) : buf.readUInt16BE(0);
  if (family === AF_INET && len >= 8) {
    return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port: buf.readUInt16BE(2), family: 4 };
  }
  if (family === AF_INET6 && len >= 24) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
    const address = canonicalIp(groups.join(':'));
    return address === null ? null : { address, port: buf.readUInt16BE(2), family: 6 };
  }
  return null;
}

/**
 * originalDestination is where the client was going before an iptables REDIRECT, or null when that is
 * not known or not different from the listener itself (see the module comment for each case).
 */
export function originalDestination(socket: Socket): OriginalDestination | null {
  const { getsockopt } = loadSupport();
  if (getsockopt === null) return null;
  const fd = socketFd(socket);
  const local = socket.localAddress;
  if (fd < 0 || local === undefined) return null;
  const localAddress = canonicalIp(local);
  if (localAddress === null) return null;
  // An IPv4 peer on a dual-stack socket is tracked by IPv4 conntrack, so the IPv4 option answers.
  const v4 = isIPv4(localAddress);
  const out = Buffer.alloc(SOCKADDR_BYTES);
  const len: [number] = [SOCKADDR_BYTES];
  const rc = v4 ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, len) : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, len);
  // -1 with ENOENT (no conntrack entry), ENOPROTOOPT (no conntrack module) or EBADF (closed meanwhile):
  // all mean "not known", and the caller falls back to Host/SNI.
  if (rc !== 0) return null;
  const dest = parseSockaddr(out, len[0]);
  if (dest === null) return null;
  if (dest.address === localAddress && dest.port === socket.localPort) return null;
  return dest;
}
