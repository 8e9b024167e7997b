/**
 * gate: what every front door does with a new connection before it reads a byte: count it against
 * its client address (`limits.maxConnectionsPerIp`, shared by all the doors of one worker), keep it
 * for shutdown, and count it in the active-connections gauge.
 *
 *   accept -> gate.admit(socket, ip) -> true: the door serves it | false: over the cap (the door refuses)
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { RuntimeRef } from '../runtime.js';
import { Roster, slot } from './roster.js';

/** GATE_LINKS: every gate's sockets take one shape, whichever listener accepted them (see roster.ts). */
const GATE_LINKS = slot('gate');

/** ConnectionGate counts connections per client address across the doors that share it. */
export class ConnectionGate {
  readonly #perIp = new Map<string, number>();
  /** Open connections, for destroyAll (a roster, not a Set: see roster.ts). */
  readonly #sockets = new Roster<Socket>(GATE_LINKS);

  constructor(
    private readonly runtime: RuntimeRef,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * admit takes a new connection from `ip`. It is counted until it closes whatever the answer; false
   * means the address is over its cap, and the door must refuse it (and serve nothing it sends).
   */
  admit(socket: Socket, ip: string): boolean {
    const n = (this.#perIp.get(ip) ?? 0) + 1;
    this.#perIp.set(ip, n);
    this.#sockets.add(socket);
    this.metrics.activeConnections.inc();
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.metrics.activeConnections.dec();
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
    });
    if (n <= this.runtime.current.config.limits.maxConnectionsPerIp) return true;
    this.log.warn({ clientIp: ip, connections: n }, 'connection cap per client IP reached');
    return false;
  }

  /** destroyAll ends every connection still open (the end of a shutdown's grace). */
  destroyAll(): void {
    for (const s of this.#sockets.values()) s.destroy();
  }
}
