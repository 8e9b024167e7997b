/**
 * audit: one log line for every state-changing admin call, whatever its outcome.
 *
 *   {"level":30,"time":"...","component":"audit","who":"ops","action":"session.revoke",
 *    "target":{"user":"alice@example.com"},"outcome":"ok","status":200,"detail":{"revoked":2},"msg":"admin audit"}
 *
 * `who` is the admin token's name (null when the call was refused before a token was accepted),
 * `time` is when the call finished. Secrets never go in: a rotated SCIM token is written as its
 * tenant only.
 */
import type { Logger } from 'pino';
import { HttpError } from '../http/errors.js';

/** AuditOutcome is how a call ended: done, refused (auth, bad input) or failed (validation, store). */
export type AuditOutcome = 'ok' | 'refused' | 'failed';

/** AuditEntry is one line's content. */
export interface AuditEntry {
  readonly who: string | null;
  readonly action: string;
  readonly target?: Readonly<Record<string, unknown>>;
  readonly outcome: AuditOutcome;
  readonly status: number;
  readonly code?: string;
  readonly peer: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** Audit writes audit lines to the application log, tagged so they can be routed apart. */
export class Audit {
  private readonly log: Logger;
  constructor(log: Logger) {
    this.log = log.child({ component: 'audit' });
  }

  write(e: AuditEntry): void {
    this.log.info(e, 'admin audit');
  }

  /** thrown records a call that ended in an error before or while it ran (4xx refused, 5xx failed). */
  thrown(who: string | null, action: string, peer: string, err: unknown, target?: Record<string, unknown>): void {
    const status = err instanceof HttpError ? err.status : 500;
    const code = err instanceof HttpError ? err.code : 'internal_error';
    this.write({ who, action, ...(target ? { target } : {}), outcome: status < 500 ? 'refused' : 'failed', status, code, peer });
  }
}
