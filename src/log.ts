/**
 * log: the application logger and the access log, both pino JSON lines.
 *
 * The access log is one line per transaction with NSS-like fields. Request headers are never logged,
 * so cookies, Authorization and Proxy-Authorization cannot leak; the app logger redacts them too in
 * case an error object carries them.
 */
import pino, { type Logger, type DestinationStream } from 'pino';
import { accessJson } from './accessjson.js';
import { nssLine } from './nss.js';

/** AccessEntry is one access-log line. */
export interface AccessEntry {
  time: string;
  node: string;
  login: string;
  department: string;
  /** The user's groups, as their session knows them (membership changes reach live sessions). */
  groups: readonly string[];
  location: string;
  sublocation: string;
  clientIp: string;
  method: string;
  url: string;
  host: string;
  status: number;
  action: Action;
  reason: string;
  /** SSL for a request decrypted from an inspected tunnel. */
  protocol: 'HTTP' | 'TUNNEL' | 'WS' | 'SSL';
  reqBytes: number;
  respBytes: number;
  durationMs: number;
  /** Set by front doors other than the explicit listener (the explicit one's lines are unchanged). */
  forwardingMethod?: 'explicit' | 'transparent';
  decrypted?: boolean;
  sni?: string;
}

/** Action is what Tollgate did with a transaction. */
export type Action = 'allowed' | 'blocked' | 'exempt' | 'auth-redirect' | 'own-host' | 'error';

/** AccessLog writes access entries. */
export interface AccessLog {
  write(entry: AccessEntry): void;
}

/** AccessLogFormat is how a line looks: Tollgate's JSON, or a ZIA NSS web-log feed line (src/nss.ts). */
export type AccessLogFormat = 'json' | 'nss';

const REDACT = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'headers.cookie',
  'headers.authorization',
  'headers["proxy-authorization"]',
  '*.token',
  '*.password',
  '*.secret',
];

/** createLogger builds the application logger (stderr by default, so stdout stays the access log). */
export function createLogger(level: string, dest?: DestinationStream): Logger {
  return pino(
    { level, base: { svc: 'tollgate' }, redact: { paths: REDACT, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    dest ?? pino.destination({ fd: 2, sync: false }),
  );
}

/**
 * ACCESS_BUFFER is how the access log coalesces lines: a write(2) happens once this many bytes are
 * waiting (or on the timer), not once per request. Under load that is one syscall for dozens of
 * lines instead of one each, which was a visible share of the data plane's CPU.
 */
export const ACCESS_BUFFER = { minLength: 32 * 1024, maxWrite: 256 * 1024, periodicFlushMs: 500 } as const;

/** FLUSH_TIMEOUT_MS bounds the wait for the disk at shutdown, so a stuck log cannot hold the process. */
const FLUSH_TIMEOUT_MS = 5000;

/** Buffered is what of sonic-boom's interface the access log relies on. */
interface Buffered extends DestinationStream {
  readonly fd: number;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  once(event: 'ready', cb: () => void): unknown;
  once(event: 'error', cb: (err: Error) => void): unknown;
}

function isBuffered(d: DestinationStream): d is Buffered {
  const b = d as Partial<Buffered>;
  return typeof b.flush === 'function' && typeof b.flushSync === 'function' && typeof b.fd === 'number';
}

/** AccessLogSink is the access log as the composition root holds it: write, and flush before exit. */
export interface AccessLogSink extends AccessLog {
  /** flush, at shutdown, resolves once every line written so far is with the kernel (or after FLUSH_TIMEOUT_MS). */
  flush(): Promise<void>;
  /** reopen starts a new file at the same path (log rotation); false for stdout and streams. */
  reopen(): boolean;
}

/**
 * createAccessLog writes entries to stdout, a file, or a given stream (tests). Lines go to pino's
 * asynchronous destination (sonic-boom) with a buffer (ACCESS_BUFFER): an access entry is already
 * the whole line, so a logger's level and base fields would only add noise. Buffered lines reach
 * the kernel on the timer, on `flush()` (shutdown awaits it), and on process exit, synchronously:
 * pino.destination registers that exit hook itself for every asynchronous destination, so a
 * process that exits without a clean shutdown keeps its lines too.
 */
export function createAccessLog(target: string | DestinationStream, format: AccessLogFormat = 'json'): AccessLogSink {
  // Buffer mode: sonic-boom's string mode measures the text it has gathered with Buffer.byteLength
  // on every write, which flattens it, so each line copied everything waiting before it (16 KiB a
  // request on average with a 32 KiB buffer; most of the data plane's allocation). In buffer mode
  // it keeps a list and a byte count, and joins the list once per write(2).
  const opts = { sync: false, contentMode: 'buffer', minLength: ACCESS_BUFFER.minLength, maxWrite: ACCESS_BUFFER.maxWrite, periodicFlush: ACCESS_BUFFER.periodicFlushMs } as const;
  const own = typeof target === 'string';
  const dest = !own ? target : target === 'stdout' ? pino.destination({ fd: 1, ...opts }) : pino.destination({ dest: target, mkdir: true, ...opts });
  const buffered = isBuffered(dest) ? dest : null;
  const line = format === 'nss' ? nssLine : accessJson;
  return {
    write(entry) {
      const text = line(entry) + '\n';
      dest.write(own ? (Buffer.from(text) as unknown as string) : text);
    },
    /**
     * reopen starts writing to a new file at the same path (after logrotate renamed the old one);
     * sonic-boom finishes the write in progress into the old file first and queues what comes
     * meanwhile for the new one, so no line is lost or written twice. False for stdout and streams.
     */
    reopen() {
      if (typeof target !== 'string' || target === 'stdout') return false;
      (dest as DestinationStream & { reopen(): void }).reopen();
      return true;
    },
    flush() {
      if (buffered === null) return Promise.resolve();
      const b = buffered;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
        timer.unref();
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        const run = () => {
          try {
            b.flush(done);
          } catch {
            done();
          }
        };
        if (b.fd >= 0) run();
        else {
          b.once('ready', run);
          b.once('error', done);
        }
      });
    },
  };
}
