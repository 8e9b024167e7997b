/**
 * server: the data plane's front doors around the one pipeline, and their shutdown.
 *
 *   explicit listener (listeners.proxy, listener.ts)
 *     GET http://host/..                 -> HTTP forwarder (forward.ts, pooled keep-alive)
 *     CONNECT host:443                   -> tunnel (tunnel.ts, spliced TCP)
 *     CONNECT host:443, inspected        -> TLS terminator (terminator.ts) -> pipeline again, door `decrypted`
 *     GET http://h/ Upgrade: websocket   -> WebSocket forwarder (websocket.ts)
 *     GET http://ip.<cloud>/             -> control-plane app (injected)
 *   transparent HTTP (listeners.transparentHttp, listener.ts + transparent.ts): GET /path + Host
 *   transparent TLS (listeners.transparentTls, transparent.ts): SNI -> tunnel, spliced or inspected
 *
 * Every door hands its requests to the same pipeline (plane.ts); this module only builds the doors
 * the config asks for and closes them together.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { Config } from '../config/schema.js';
import { createHttpListener } from './listener.js';
import { createDataPlane, type ProxyDeps } from './plane.js';
import { createTransparentTls, transparentHttpDoor } from './transparent.js';
import { explicitArrival } from './txlog.js';

export type { OwnHostHandler, ProxyAuth, Redirect } from './handler.js';
export type { ProxyDeps } from './plane.js';

/** ProxyServer is the data plane's listeners plus what they need to shut down cleanly. */
export interface ProxyServer {
  /** The explicit proxy listener. */
  readonly server: http.Server;
  /** The transparent listeners, when the config names them. */
  readonly transparentHttp: http.Server | null;
  readonly transparentTls: net.Server | null;
  /** Stop accepting, wait up to graceMs for in-flight work, then close what is left. */
  shutdown(graceMs: number): Promise<void>;
}

/** createProxyServer builds the listeners (not yet listening). Limits are read from the initial config. */
export function createProxyServer(deps: ProxyDeps, config: Config): ProxyServer {
  const plane = createDataPlane(deps, config);
  const server = createHttpListener(plane, config, { connect: true, arrival: explicitArrival });
  const transparentHttp = config.listeners.transparentHttp === undefined ? null : createHttpListener(plane, config, transparentHttpDoor);
  const transparentTls = config.listeners.transparentTls === undefined ? null : createTransparentTls(plane, config);
  const servers: (http.Server | net.Server)[] = [server, transparentHttp, transparentTls].filter((s) => s !== null);
  return {
    server,
    transparentHttp,
    transparentTls,
    shutdown(graceMs: number): Promise<void> {
      const closed = servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())));
      for (const s of servers) if ('closeIdleConnections' in s) s.closeIdleConnections();
      const t = setTimeout(() => {
        plane.gate.destroyAll();
        plane.close();
      }, graceMs);
      t.unref();
      return Promise.all(closed).then(() => {
        clearTimeout(t);
        plane.close();
      });
    },
  };
}
