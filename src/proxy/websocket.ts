/**
 * websocket: WebSocket upgrades to origins, on http-proxy.
 *
 *   Client -> Proxy (GET http://h/ Upgrade: websocket) -> pipeline -> http-proxy ws -> origin
 *
 * Upgraded sockets leave any pool, so they get their own non-pooling agent; it dials through
 * dial.ts like every upstream connection. The caller has cleaned the head (keeping the
 * Connection/Upgrade pair) and set req.url to the origin-form path.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import httpProxy from 'http-proxy';
import { UpstreamAgent, type DialOptions } from './dial.js';

/** WebSocketForwarder relays upgraded connections; one per proxy listener. */
export class WebSocketForwarder {
  readonly #agent: UpstreamAgent;
  readonly #proxy = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, ws: true });

  constructor(dialOpts: DialOptions, idleTimeoutMs: number) {
    this.#agent = new UpstreamAgent(dialOpts, { keepAlive: false, timeout: idleTimeoutMs });
    // Failures are reported per call (below); this keeps an unexpected one from being unhandled.
    this.#proxy.on('error', () => {});
  }

  /** forward relays the upgrade to host:port; onError gets an upstream failure before the switch. */
  forward(req: IncomingMessage, socket: Socket, head: Buffer, host: string, port: number, onError: (err: Error) => void): void {
    this.#proxy.ws(req, socket, head, { target: { protocol: 'http:', host, port }, agent: this.#agent }, (err) => onError(err));
  }

  close(): void {
    this.#agent.destroy();
  }
}
