/**
 * txlog: where a transaction begins and how it ends up in the access log and the metrics, the
 * same for every front door and forwarder.
 *
 *   door -> begin (Transaction from the arrival) -> pipeline + forwarder -> record (one line, one count)
 *
 * Bytes are counted on the client's socket between two records, so keep-alive requests on one
 * connection each get their own share.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { normalizeIp } from '../config/ip.js';
import type { AccessEntry, AccessLog } from '../log.js';
import { Tally, type Metrics } from '../metrics.js';
import type { Runtime } from '../runtime.js';
import { redactTokens } from '../auth/identify.js';
import { isUpstreamFault, type UpstreamFailure } from './errno.js';
import { clientAddress, type Transaction } from './pipeline.js';
import { loggableTarget } from './requestline.js';

/** Door is how a request reached the pipeline. */
export type Door = 'explicit' | 'decrypted' | 'transparent';

/**
 * Arrival is where a request came from, as its front door knows it. The TLS facts are set by a
 * door that terminated TLS (an inspected tunnel); they go into the access log as that door's own
 * fields, and nothing else about the line changes.
 */
export interface Arrival {
  readonly door: Door;
  /** The TCP peer; the client IP is derived from it (and X-Forwarded-For from a trusted forwarder). */
  readonly peerIp: string;
  /** How the client reached us: `explicit` (it was configured to use the proxy) or `transparent`. */
  readonly forwardingMethod: 'explicit' | 'transparent';
  readonly tls: TlsFacts | null;
  /**
   * Where the connection was going, when the door knows it before any request: the tunnel an
   * inspected request was decrypted from (the CONNECT target, or SNI:443 / the original destination
   * for a transparent one). Requests that arrive through it go there, named as the tunnel was.
   */
  readonly tunnel?: TunnelTarget;
  /**
   * The port a routed connection was going to (its original destination after a REDIRECT): the port
   * of a Host that names none. The host itself is always the one the request names, so that the
   * policy decided for it and the place it goes are the same.
   */
  readonly originalPort?: number;
}

/** TunnelTarget is the destination of an intercepted connection. */
export interface TunnelTarget {
  /** The name requests must carry in Host: the SNI, or the CONNECT host when the client sent none. */
  readonly name: string;
  /** Where upstream connections go. */
  readonly host: string;
  readonly port: number;
}

/** TlsFacts are what a TLS-terminating door knows about the connection a request came in on. */
export interface TlsFacts {
  readonly protocol: 'SSL';
  readonly decrypted: boolean;
  /** The ClientHello's server name ('' when the client sent none). */
  readonly sni: string;
}

/** explicitArrival is the arrival of a request on the explicit listener. */
export function explicitArrival(socket: Socket): Arrival {
  return { door: 'explicit', peerIp: normalizeIp(socket.remoteAddress ?? ''), forwardingMethod: 'explicit', tls: null };
}

const BYTES = Symbol('tollgate.bytes');
/** CountedSocket remembers how far its byte counters had got at the last record. */
export type CountedSocket = Socket & { [BYTES]?: { read: number; written: number } };

/** TxState is one transaction in flight: logged once, and what to abort if the client leaves. */
export interface TxState {
  readonly tx: Transaction;
  readonly arrival: Arrival;
  logged: boolean;
  /** The upstream exchange in flight, aborted when the client leaves before the response is done. */
  abort: (() => void) | null;
}

const NO_GROUPS: readonly string[] = Object.freeze([]);
const SEP = Tally.SEP;

let clockMs = -1;
let clockIso = '';

/**
 * isoNow is `new Date().toISOString()`, made once per millisecond: under load a dozen lines share
 * each millisecond, and making the date string is about a quarter of a line's cost (0.5 of 2 µs).
 */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== clockMs) {
    clockMs = ms;
    clockIso = new Date(ms).toISOString();
  }
  return clockIso;
}

/** RequestFacts is what a transaction is begun from: a parsed request, or what a door knows of a connection. */
export type RequestFacts = Pick<IncomingMessage, 'method' | 'url' | 'headers'>;

/** TxLog begins transactions and records each exactly once. */
export class TxLog {
  constructor(
    private readonly accessLog: AccessLog,
    private readonly metrics: Metrics,
  ) {}

  /** begin opens a transaction for a request from an arrival, located by its client IP. */
  begin(rt: Runtime, req: RequestFacts, protocol: Transaction['protocol'], arrival: Arrival): TxState {
    const clientIp = clientAddress(rt, arrival.peerIp, req.headers['x-forwarded-for']);
    const tx: Transaction = {
      rt,
      startMs: performance.now(),
      protocol,
      peerIp: arrival.peerIp,
      clientIp,
      match: rt.locator.lookup(clientIp),
      method: req.method ?? '',
      url: req.url ?? '',
      host: '',
      port: 0,
      login: '',
      department: '',
      action: 'allowed',
      reason: '',
      identity: null,
    };
    return { tx, arrival, logged: false, abort: null };
  }

  /** failed records an upstream failure on the transaction; loops are the client's, not the origin's. */
  failed(tx: Transaction, fail: UpstreamFailure): void {
    const upstream = isUpstreamFault(fail);
    if (upstream) this.metrics.upstreamErrors.inc({ code: fail.code });
    tx.action = upstream ? 'error' : 'blocked';
    tx.reason = fail.code;
  }

  /** refused records a refusal's code on the transaction. */
  refused(tx: Transaction, code: string): void {
    tx.action = 'blocked';
    tx.reason = code;
  }

  #count(action: Transaction['action'], status: number, protocol: Transaction['protocol'], reason: string): void {
    // Statuses are three digits and actions and protocols a handful, so the label sets stay few.
    this.metrics.requestTally.add(`${action}${SEP}${status}${SEP}${protocol}`);
    if (action !== 'blocked') return;
    // Reasons are the error catalogue's stable codes.
    const why = reason === '' ? 'unspecified' : reason;
    this.metrics.blockedTally.add(why);
  }

  /** countRefusal counts a request the listener refused before it became a transaction (it cannot be parsed). */
  countRefusal(status: number, code: string): void {
    this.#count('blocked', status, 'HTTP', code);
  }

  /** record writes the transaction's access-log line and counts it, once; status 0 means no response was sent. */
  record(st: TxState, socket: CountedSocket, status: number): void {
    if (st.logged) return;
    st.logged = true;
    const tx = st.tx;
    const b = (socket[BYTES] ??= { read: 0, written: 0 });
    const reqBytes = socket.bytesRead - b.read;
    const respBytes = socket.bytesWritten - b.written;
    b.read = socket.bytesRead;
    b.written = socket.bytesWritten;
    if (status === 0 && tx.reason === '') tx.reason = 'client_aborted';
    this.#count(tx.action, status, tx.protocol, tx.reason);
    const entry: AccessEntry = {
      time: isoNow(),
      node: tx.rt.nodeName,
      login: tx.login,
      department: tx.department,
      groups: tx.identity?.session.groups ?? NO_GROUPS,
      location: tx.match?.location.name ?? '',
      sublocation: tx.match?.sublocation?.name ?? '',
      clientIp: tx.clientIp,
      method: tx.method,
      url: loggableTarget(redactTokens(tx.url, tx.host === tx.rt.gatewayHost)),
      host: tx.host,
      status,
      action: tx.action,
      reason: tx.reason,
      protocol: tx.protocol,
      reqBytes,
      respBytes,
      durationMs: Math.round((performance.now() - tx.startMs) * 1000) / 1000,
    };
    const a = st.arrival;
    if (a.door !== 'explicit') {
      entry.forwardingMethod = a.forwardingMethod;
      if (a.tls !== null) {
        entry.protocol = a.tls.protocol;
        entry.decrypted = a.tls.decrypted;
        entry.sni = a.tls.sni;
      }
    }
    this.accessLog.write(entry);
  }
}
