/**
 * check: running every PAC file of an activation on the validation table, in a sandbox.
 *
 *   preparePac -> checkInWorker(checks) -> worker thread (checker.ts): checkAll -> evaluate.ts (QuickJS)
 *                                       -> errors and warnings, in the order of the checks
 *
 * This module only starts the worker; it loads nothing of the sandbox itself.
 *
 * The check runs in a worker thread that exits when it is done, so the sandbox (pac-resolver, its
 * JavaScript parser and QuickJS) is never held by the proxy between activations. Where a worker
 * cannot start, and when running from TypeScript sources, the same check runs in this thread.
 */
import { Worker } from 'node:worker_threads';

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

/** checkInWorker runs checker.ts's checkAll in a worker thread, or here when no worker can start. */
export function checkInWorker(job: PacCheckJob): Promise<PacCheckResult> {
  if (job.checks.length === 0) return Promise.resolve({ errors: [], warnings: [] });
  const here = () => import('./checker.js').then((m) => m.checkAll(job));
  // Run from TypeScript sources (tests, tsx) a worker would not have the loader that reads them.
  if (!import.meta.url.endsWith('.js')) return here();
  let worker: Worker;
  try {
    worker = new Worker(new URL('./checker.js', import.meta.url), { workerData: { pacCheck: job } });
  } catch {
    // No worker here (a restricted runtime): the check itself must still run, in this thread.
    return here();
  }
  return new Promise((resolve, reject) => {
    let done = false;
    worker.once('message', (r: PacCheckResult | { failed: string }) => {
      done = true;
      if ('failed' in r) reject(new Error(`PAC check failed: ${r.failed}`));
      else resolve(r);
    });
    worker.once('error', (err) => {
      done = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!done) reject(new Error(`PAC check worker exited with code ${code} before answering`));
    });
  });
}
