/**
 * transparent: the front doors for traffic that was never configured for a proxy, routed to us by a
 * GRE or IPsec tunnel or an iptables REDIRECT (as a branch reaches ZIA), or sent to our port directly.
 *
 *   HTTP (listeners.transparentHttp): GET /path + Host  -> pipeline, door `transparent`
 *       destination: the Host, on its own port or the original destination's (origdst.ts), else 80
 *   TLS  (listeners.transparentTls):  ClientHello, peeked and not consumed (clienthello.ts)
 *       -> SNI names the host -> pipeline.tunnel(SNI, original port or 443): spliced, or inspected
 *       -> no SNI, not TLS   -> closed with a log line (or, with `transparent.withoutSni:
 *                               originalDestination`, tunnelled to where the client was going)
 *
 * The client is placed by its real source address, as on the explicit listener; every decision,
 * forwarder and access-log line is the pipeline's, with `forwardingMethod: transparent`.
 */
import net, { type Socket } from 'node:net';
import { normalizeIp } from '../config/ip.js';
import type { Config } from '../config/schema.js';
import { peekClientHello } from './clienthello.js';
import type { HttpDoor } from './listener.js';
import { originalDestination, type OriginalDestination } from './origdst.js';
import type { DataPlane } from './plane.js';
import type { Arrival, CountedSocket } from './txlog.js';

/** MAX_HELLO_BYTES bounds the bytes read while looking for the SNI (post-quantum hellos are a few KiB). */
const MAX_HELLO_BYTES = 16 * 1024;

/** authority is an original destination as host:port for the log. */
function authority(od: OriginalDestination): string {
  return od.family === 6 ? `[${od.address}]:${od.port}` : `${od.address}:${od.port}`;
}

/**
 * transparentHttpDoor: requests name their host in Host, and go to that host. The original
 * destination gives only the port: were the request sent to the original address whatever its Host
 * said, a client could name an exempt or allowed host to reach any address unchecked, since every
 * decision is made for the host the request names (Squid guards the same gap with host_verify_strict).
 */
export const transparentHttpDoor: HttpDoor = {
  connect: false,
  arrival(socket: Socket): Arrival {
    const peerIp = normalizeIp(socket.remoteAddress ?? '');
    const od = originalDestination(socket);
    const base = { door: 'transparent', peerIp, forwardingMethod: 'transparent', tls: null } as const;
    return od === null ? base : { ...base, originalPort: od.port };
  },
};

/** createTransparentTls builds the transparent TLS door (not yet listening). */
export function createTransparentTls(plane: DataPlane, config: Config): net.Server {
  const { pipeline, gate, txlog, deps } = plane;
  const headersTimeoutMs = config.limits.headersTimeoutMs;
  const server = net.createServer({ pauseOnConnect: false });

  server.on('connection', (socket: CountedSocket) => {
    const peerIp = normalizeIp(socket.remoteAddress ?? '');
    socket.on('error', () => socket.destroy());
    // Over the cap a connection that never spoke HTTP to us cannot be answered: it is closed.
    if (!gate.admit(socket, peerIp)) return void socket.destroy();
    const od = originalDestination(socket);
    const arrival = (sni: string): Arrival => ({ door: 'transparent', peerIp, forwardingMethod: 'transparent', tls: { protocol: 'SSL', decrypted: false, sni } });

    /** close ends a connection whose destination we will not take, with an access-log line and a log line. */
    const close = (code: string, msg: string, extra: object = {}) => {
      const rt = deps.runtime.current;
      const st = txlog.begin(rt, { method: 'CONNECT', url: '', headers: {} }, 'TUNNEL', arrival(''));
      if (od !== null) {
        st.tx.host = od.address;
        st.tx.port = od.port;
        st.tx.url = authority(od);
      }
      txlog.refused(st.tx, code);
      deps.metrics.transparentClosed.inc({ reason: code });
      deps.log.info({ clientIp: st.tx.clientIp, code, originalDestination: od === null ? null : authority(od), ...extra }, msg);
      socket.destroy();
      txlog.record(st, socket, 0);
    };

    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = () => {
      settled = true;
      socket.off('data', onData);
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      settle();
      close('hello_timeout', 'transparent TLS: no ClientHello in time, closed');
    }, headersTimeoutMs);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const peek = peekClientHello(buffered, MAX_HELLO_BYTES);
      if (peek.kind === 'more') return;
      settle();
      socket.pause();
      if (peek.kind === 'sni') return pipeline.tunnel(socket, buffered, arrival(peek.name), peek.name, od?.port ?? 443);
      // Without a name, only the original destination says where this was going, and only if asked to use it.
      const why = peek.kind === 'not-tls' ? 'not_tls' : peek.kind === 'no-sni' ? 'no_sni' : 'bad_sni';
      if (od !== null && why !== 'bad_sni' && deps.runtime.current.config.transparent.withoutSni === 'originalDestination') {
        return pipeline.tunnel(socket, buffered, arrival(''), od.address, od.port);
      }
      const what = why === 'not_tls' ? 'not TLS' : why === 'no_sni' ? 'no SNI in the ClientHello' : 'the SNI is not a host name';
      close(why, `transparent TLS: ${what}, closed`, peek.kind === 'not-tls' ? { why: peek.reason } : {});
    };
    socket.on('data', onData);
    socket.once('close', () => {
      if (settled) return;
      // The client went away before its ClientHello was whole.
      settle();
      close('client_aborted', 'transparent TLS: closed by the client before a ClientHello');
    });
  });
  return server;
}
