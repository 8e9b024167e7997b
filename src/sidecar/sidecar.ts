/**
 * sidecar: control-plane work run in a short-lived child process, so that the serving process never
 * holds its code or its memory.
 *
 *   activation -> runApart('config' | 'pacCheck', input) -> fork(child.js) -> JOBS[job](input)
 *                                                       <- { value } | { failure }
 *
 * Validating a config loads zod and its schema; checking PAC files loads pac-resolver, a JavaScript
 * parser and QuickJS (WebAssembly). Run in the proxy, they would stay resident for its whole life
 * (an ES module is never unloaded, and a worker thread leaves its heap pages and compiled
 * WebAssembly behind): about 25 MiB of a proxy that otherwise needs far less. In a child, all of it
 * is returned to the system when the child exits.
 *
 * One child serves every job that comes while it lives: a start asks for several validations and a
 * PAC check in a row, and pays for one process. It is let go IDLE_MS after its last answer. When no
 * child can be started at all, or when running from TypeScript sources (tests, tsx, where a plain
 * `node` child could not load them), the job runs in this process instead: the same code and the
 * same answer, only without the memory saving.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { ConfigError } from '../config/error.js';
import { JOBS, type JobName, type SidecarJobs } from './jobs.js';

/** IDLE_MS is how long a child with nothing to do is kept for the next job. */
const IDLE_MS = 300;
/** JOB_TIMEOUT_MS bounds one job; the PAC check limits each script's run far below this. */
const JOB_TIMEOUT_MS = 60_000;
/** STDERR_TAIL bounds what is kept of the child's stderr, to explain a child that died. */
const STDERR_TAIL = 4096;

/** Request is one job sent to the child. */
export interface Request {
  readonly id: number;
  readonly job: JobName;
  readonly input: unknown;
}

/** Failure is a job's error as it crosses back: a ConfigError keeps its source and lines. */
export type Failure = { readonly kind: 'config'; readonly source: string; readonly errors: readonly string[] } | { readonly kind: 'error'; readonly message: string };

type Reply = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly failure: Failure };

interface Pending {
  readonly job: JobName;
  readonly input: unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** runHere runs a job in this process. */
function runHere<K extends JobName>(job: K, input: SidecarJobs[K]['input']): Promise<SidecarJobs[K]['output']> {
  return (JOBS[job] as (input: unknown) => Promise<SidecarJobs[K]['output']>)(input);
}

/** fromFailure rebuilds the error a job threw. */
function fromFailure(f: Failure): Error {
  return f.kind === 'config' ? new ConfigError(f.source, f.errors) : new Error(f.message);
}

/** SidecarProcess is one child and the jobs it has not answered yet. */
class SidecarProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #spawned = false;
  #stderr = '';
  #idle: NodeJS.Timeout | null = null;
  #gone = false;

  constructor(
    childUrl: URL,
    private readonly onGone: (p: SidecarProcess) => void,
  ) {
    const env = { ...process.env };
    // A cluster worker's markers would make the child take itself for a worker of this cluster.
    delete env.NODE_UNIQUE_ID;
    delete env.NODE_CHANNEL_FD;
    this.#child = fork(childUrl, [], {
      // Not the parent's flags: a profiler or inspector flag meant for the proxy is not for this child.
      execArgv: [],
      env,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.#child.once('spawn', () => (this.#spawned = true));
    this.#child.stderr!.setEncoding('utf8');
    this.#child.stderr!.on('data', (s: string) => (this.#stderr = (this.#stderr + s).slice(-STDERR_TAIL)));
    this.#child.on('message', (r: Reply) => this.#settle(r));
    this.#child.once('error', (err) => this.#end(err));
    this.#child.once('exit', (code, signal) => this.#end(null, code, signal));
  }

  /** run sends one job and answers with its result. */
  run(job: JobName, input: unknown): Promise<unknown> {
    this.#busy();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#child.kill('SIGKILL');
        this.#end(new Error(`sidecar job ${job} did not answer within ${JOB_TIMEOUT_MS / 1000} s`));
      }, JOB_TIMEOUT_MS);
      this.#pending.set(id, { job, input, resolve, reject, timer });
      this.#child.send({ id, job, input } satisfies Request, (err) => {
        if (err !== null) this.#end(err);
      });
    });
  }

  #busy(): void {
    if (this.#idle !== null) clearTimeout(this.#idle);
    this.#idle = null;
    this.#child.ref();
    this.#child.channel?.ref();
  }

  #settle(r: Reply): void {
    const p = this.#pending.get(r.id);
    if (p === undefined) return; // answered already (timed out); nothing waits for it
    this.#pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.value);
    else p.reject(fromFailure(r.failure));
    if (this.#pending.size > 0) return;
    // Nothing left: the child may not keep this process alive, and goes unless a job comes soon.
    this.#child.unref();
    this.#child.channel?.unref();
    this.#idle = setTimeout(() => this.#letGo(), IDLE_MS);
    this.#idle.unref();
  }

  #letGo(): void {
    this.#gone = true;
    this.onGone(this);
    if (this.#child.connected) this.#child.disconnect();
  }

  /**
   * end settles every job still waiting when the child cannot answer them. A child that never
   * started leaves its jobs to this process; one that died mid-job fails them, saying how it died.
   */
  #end(err: Error | null, code?: number | null, signal?: NodeJS.Signals | null): void {
    if (!this.#gone) {
      this.#gone = true;
      this.onGone(this);
    }
    if (this.#idle !== null) clearTimeout(this.#idle);
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    if (err !== null || this.#child.exitCode === null) this.#child.kill('SIGKILL');
    for (const p of waiting) {
      clearTimeout(p.timer);
      if (!this.#spawned) {
        runHere(p.job, p.input as never).then(p.resolve, p.reject);
        continue;
      }
      const how = err?.message ?? `sidecar exited (${signal ?? `code ${code}`}) before answering`;
      const tail = this.#stderr.trim();
      p.reject(new Error(tail === '' ? `${p.job}: ${how}` : `${p.job}: ${how}: ${tail.split('\n').slice(-3).join(' | ')}`));
    }
  }
}

let current: SidecarProcess | null = null;

/**
 * runApart runs a job in the sidecar and answers as the job would: its value, or the error it
 * threw (a ConfigError with its lines intact). See the module comment for when it runs here.
 */
export function runApart<K extends JobName>(job: K, input: SidecarJobs[K]['input']): Promise<SidecarJobs[K]['output']> {
  if (!import.meta.url.endsWith('.js')) return runHere(job, input);
  // A child that leaves (idle, died) takes itself out of `current` at once, through onGone.
  if (current === null) {
    try {
      current = new SidecarProcess(new URL('./child.js', import.meta.url), (p) => {
        if (current === p) current = null;
      });
    } catch {
      // fork itself threw (no process could be made): the job still runs, here.
      return runHere(job, input);
    }
  }
  return current.run(job, input) as Promise<SidecarJobs[K]['output']>;
}
