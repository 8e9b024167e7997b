/**
 * log: the application logger and the access log, both pino JSON lines.
 *
 * The access log is one line per transaction with NSS-like fields. Request headers are never logged,
 * so cookies, Authorization and Proxy-Authorization cannot leak; the app logger redacts them too in
 * case an error object carries them.
 */
import pino, { type Logger, type DestinationStream } from 'pino';
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
  protocol: 'HTTP' | 'TUNNEL' | 'WS';
  reqBytes: number;
  respBytes: number;
  durationMs: number;
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
 * createAccessLog writes entries to stdout, a file, or a given stream (tests). Lines go straight
 * to pino's asynchronous destination (sonic-boom): an access entry is already the whole line, so a
 * logger's level and base fields would only add noise.
 */
export function createAccessLog(target: string | DestinationStream, format: AccessLogFormat = 'json'): AccessLog & { flush(): void; reopen(): boolean } {
  const dest =
    typeof target !== 'string'
      ? target
      : target === 'stdout'
        ? pino.destination({ fd: 1, sync: false })
        : pino.destination({ dest: target, mkdir: true, sync: false });
  const line = format === 'nss' ? nssLine : (e: AccessEntry) => JSON.stringify(e);
  return {
    write(entry) {
      dest.write(line(entry) + '\n');
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
      const d = dest as DestinationStream & { flushSync?: () => void };
      try {
        d.flushSync?.();
      } catch {
        // Not yet open (file still being created): sonic-boom flushes on its own when ready.
      }
    },
  };
}
