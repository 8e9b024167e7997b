/**
 * child: the sidecar process's side. It answers each `{ id, job, input }` from its parent with
 * `{ id, ok: true, value }` or `{ id, ok: false, failure }`, and exits when the parent lets go of
 * it (disconnect) or goes away.
 */
import { ConfigError } from '../config/error.js';
import { isJobName, JOBS } from './jobs.js';
import type { Failure, Request } from './sidecar.js';

/** failureOf keeps what the parent shows of an error: a ConfigError's lines, or a message. */
function failureOf(err: unknown): Failure {
  if (err instanceof ConfigError) return { kind: 'config', source: err.source, errors: [...err.errors] };
  return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
}

function answer(reply: object): void {
  // A parent that went away cannot be answered; the disconnect handler ends this process.
  if (process.connected) process.send!(reply);
}

process.on('message', (msg: Request) => {
  const { id, job, input } = msg;
  if (!isJobName(job)) {
    answer({ id, ok: false, failure: { kind: 'error', message: `no sidecar job is named ${JSON.stringify(job)}` } });
    return;
  }
  (JOBS[job] as (input: unknown) => Promise<unknown>)(input).then(
    (value) => answer({ id, ok: true, value }),
    (err: unknown) => answer({ id, ok: false, failure: failureOf(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
