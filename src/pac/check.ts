/**
 * check: running every PAC file of an activation on the validation table, in a sandbox.
 *
 *   preparePac -> checkApart(checks) -> sidecar process (checker.ts): checkAll -> evaluate.ts (QuickJS)
 *                                    -> errors and warnings, in the order of the checks
 *
 * This module only hands the job over; it loads nothing of the sandbox itself. The check runs in
 * the sidecar, a child process, so the sandbox (pac-resolver, its JavaScript parser and QuickJS) is
 * never held by the proxy: not even the pages a worker thread would leave behind.
 */
import { runApart } from '../sidecar/sidecar.js';

/** PacCheck is one PAC file to validate: its text as each sample client gets it. */
export interface PacCheck {
  readonly label: string;
  readonly runs: readonly { readonly clientIp: string; readonly text: string }[];
}

/** PacCheckJob is everything one activation's check needs; it crosses to the worker as plain data. */
export interface PacCheckJob {
  readonly checks: readonly PacCheck[];
  readonly urls: readonly string[];
  readonly hosts: readonly (readonly [string, string])[];
}

/** PacCheckResult is what the checks found. */
export interface PacCheckResult {
  readonly errors: string[];
  readonly warnings: string[];
}

/** checkApart runs checker.ts's checkAll in the sidecar (see sidecar.ts for when it runs here instead). */
export function checkApart(job: PacCheckJob): Promise<PacCheckResult> {
  if (job.checks.length === 0) return Promise.resolve({ errors: [], warnings: [] });
  return runApart('pacCheck', job);
}
