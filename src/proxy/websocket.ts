/**
 * websocket: WebSocket upgrades to origins, on http-proxy.
 *
 *   Client -> Proxy (GET http://h/ Upgrade: websocket) -> pipeline -> http-proxy ws -> origin (ws)
 *   Client -> inspected TLS (GET / Upgrade: websocket)  -> pipeline -> http-proxy ws -> origin (wss, verified)
 *
 * Upgraded sockets leave any pool, so they get their own non-pooling agents; they dial through
 * dial.ts like every upstream connection, and a decrypted upgrade goes on over TLS verified against
 * the host's trust, as decrypted requests do. The caller has cleaned the head (keeping the
 * Connection/Upgrade pair) and set req.url to the origin-form path. http-proxy is loaded on the
 * first upgrade, so a worker that never relays a WebSocket never holds it.
 */
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import type Server from 'http-proxy';
import { dial, UpstreamAgent, type DialOptions } from './dial.js';

/** TlsUpstreamAgent opens verified TLS (SNI, ALPN http/1.1) over a dial.ts connection. */
class TlsUpstreamAgent extends https.Agent {
  constructor(
    private readonly dialOpts: DialOptions,
    private readonly trust: (host: string) => SecureContext,
    timeout: number,
  ) {
    super({ keepAlive: false, timeout });
  }
  override createConnection(options: { host?: string; port?: number | string }): Socket {
    // A failed certificate check fails the upgrade with OpenSSL's code, as for decrypted requests.
    const host = options.host ?? 'localhost';
    const raw = dial(this.dialOpts, host, Number(options.port ?? 443), { noDelay: true });
    return tls.connect({ socket: raw, host, ...(isIP(host) === 0 ? { servername: host } : {}), secureContext: this.trust(host), ALPNProtocols: ['http/1.1'] });
  }
}

/** WebSocketForwarder relays upgraded connections; one per worker. */
export class WebSocketForwarder {
  readonly #plain: UpstreamAgent;
  readonly #tls: TlsUpstreamAgent;
  #proxy: Promise<Server> | null = null;

  constructor(dialOpts: DialOptions, idleTimeoutMs: number, trust: (host: string) => SecureContext) {
    this.#plain = new UpstreamAgent(dialOpts, { keepAlive: false, timeout: idleTimeoutMs });
    this.#tls = new TlsUpstreamAgent(dialOpts, trust, idleTimeoutMs);
  }

  #load(): Promise<Server> {
    this.#proxy ??= import('http-proxy').then(({ default: httpProxy }) => {
      const proxy = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, ws: true });
      // Failures are reported per call (below); this keeps an unexpected one from being unhandled.
      proxy.on('error', () => {});
      return proxy;
    });
    return this.#proxy;
  }

  /** forward relays the upgrade to host:port (over TLS when `secure`); onError gets an upstream failure before the switch. */
  forward(req: IncomingMessage, socket: Socket, head: Buffer, host: string, port: number, secure: boolean, onError: (err: Error) => void): void {
    const target = { protocol: secure ? 'https:' : 'http:', host, port };
    this.#load().then(
      (proxy) => {
        if (socket.destroyed) return;
        proxy.ws(req, socket, head, { target, agent: secure ? this.#tls : this.#plain, secure }, (err) => onError(err));
      },
      (err: Error) => onError(err),
    );
  }

  close(): void {
    this.#plain.destroy();
    this.#tls.destroy();
  }
}
