/**
 * proc: the bench's child processes, and what /proc says about them.
 *
 * Every child is spawned through one `Children` registry, pinned to a core with `taskset -c N`
 * (taskset execs the command, so the pid we hold is the program's own). The registry kills what is
 * left when the bench ends, however it ends: normally, on an exception, or on SIGINT/SIGTERM.
 *
 * CPU and RSS are read from /proc (proc(5)): utime+stime are fields 14 and 15 of /proc/PID/stat in
 * clock ticks; VmRSS is a line of /proc/PID/status. Both are summed over the process and its
 * descendants, so a proxy that forks helpers is charged for them too.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, accessSync, mkdtempSync, rmSync, constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';

/** Core numbers: the proxy under test gets core 0; load generators and the origin get core 1. */
export const PROXY_CORE = 0;
export const LOAD_CORE = 1;

/** HostPort is a loopback listener address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Child is one spawned process with its output so far. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process is gone. */
  readonly exited: Promise<number | string>;
  /** All of stdout, and the last 8 KB of stderr (for error messages). */
  stdout(): string;
  stderrTail(): string;
}

/** SpawnOptions says where a child runs and what it gets. */
export interface SpawnOptions {
  /** Core to pin to; null runs unpinned. */
  readonly core: number | null;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

const STDERR_KEEP = 8192;

/** Children spawns pinned processes and guarantees they are all gone when the bench ends. */
export class Children {
  readonly #live = new Set<Child>();
  readonly #dirs = new Set<string>();
  readonly #pin: boolean;

  /** pin: whether to pin at all (it needs taskset and at least two cores). */
  constructor(pin: boolean) {
    this.#pin = pin && hasCommand('taskset');
    const killAll = () => {
      this.killAllNow();
      for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
    };
    process.once('exit', killAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        killAll();
        process.stderr.write(`\nbench: ${sig}, children stopped\n`);
        process.exit(130);
      });
    }
  }

  /** pinning tells whether taskset is available (without it children run unpinned). */
  get pinning(): boolean {
    return this.#pin;
  }

  /** spawn starts `cmd args` pinned to `opts.core` and tracks it until it exits. */
  spawn(name: string, cmd: string, args: readonly string[], opts: SpawnOptions): Child {
    const [file, argv] = this.#pin && opts.core !== null ? ['taskset', ['-c', String(opts.core), cmd, ...args]] : [cmd, [...args]];
    const proc = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
      err = (err + s).slice(-STDERR_KEEP);
    });
    const exited = new Promise<number | string>((resolve) => {
      proc.once('error', (e) => {
        err += `\nspawn failed: ${e.message}`;
        resolve('spawn-error');
      });
      proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    const child: Child = { name, pid: proc.pid ?? -1, proc, exited, stdout: () => out, stderrTail: () => err };
    this.#live.add(child);
    void exited.then(() => this.#live.delete(child));
    return child;
  }

  /** tempDir makes a directory for a child's config and state; it is removed when the bench ends. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), `tollgate-bench-${prefix}-`));
    this.#dirs.add(dir);
    return dir;
  }

  /** stop asks a child to end (SIGTERM), and kills it if it is still there after graceMs. */
  async stop(child: Child, graceMs = 3000): Promise<void> {
    if (!this.#live.has(child)) return;
    child.proc.kill('SIGTERM');
    const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
    await child.exited;
    clearTimeout(timer);
  }

  /** killAllNow SIGKILLs every child still running; synchronous so it works in an 'exit' handler. */
  killAllNow(): void {
    for (const c of this.#live) {
      try {
        c.proc.kill('SIGKILL');
      } catch {
        // Already gone between the check and the kill: nothing left to do.
      }
    }
    this.#live.clear();
  }
}

/** runToEnd spawns a child and waits for it, killing it after timeoutMs; resolves with its stdout and exit. */
export async function runToEnd(children: Children, name: string, cmd: string, args: readonly string[], opts: SpawnOptions, timeoutMs: number): Promise<{ stdout: string; stderr: string; exit: number | string; timedOut: boolean }> {
  const child = children.spawn(name, cmd, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.proc.kill('SIGKILL');
  }, timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { stdout: child.stdout(), stderr: child.stderrTail(), exit, timedOut };
}

/** hasCommand tells whether an executable named `name` is on PATH (or in /usr/sbin, where squid lives). */
export function hasCommand(name: string): boolean {
  return findCommand(name) !== null;
}

/** findCommand returns the full path of an executable on PATH or in the sbin directories, or null. */
export function findCommand(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'].filter((d) => d !== '');
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // Not in this directory: try the next one.
    }
  }
  return null;
}

/** commandVersion returns the first line `cmd args` prints (stdout or stderr), or '' when it fails. */
export function commandVersion(cmd: string, args: readonly string[]): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    return out.split('\n')[0]!.trim();
  } catch (err) {
    // wrk -v prints its banner and exits 1; the banner is still what we want.
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n')[0]!.trim();
  }
}

const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100; // USER_HZ on every mainstream Linux build
  }
})();

/** processTree lists pid and every process below it (from /proc/PID/task/TID/children). */
function processTree(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 1000) {
    const p = queue.shift()!;
    out.push(p);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c !== '') queue.push(Number(c));
      } catch {
        // The thread ended between listing and reading: it has no children to add.
      }
    }
  }
  return out;
}

/** statFields returns the fields after `comm` in /proc/PID/stat (index 0 is field 3, `state`), or null. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses, so count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // exited between listing and reading
  }
}

/**
 * cpuMicros is the user+system CPU time used so far by pid and its descendants, in µs: the live
 * ones, and those pid has reaped (its cutime and cstime), so a child that exits between two readings
 * (a sidecar) does not take its CPU out of the second.
 */
export function cpuMicros(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const f = statFields(p);
    if (f !== null) ticks += Number(f[11]) + Number(f[12]) + (p === pid ? Number(f[13]) + Number(f[14]) : 0); // utime, stime (fields 14, 15); cutime, cstime (16, 17)
  }
  return (ticks * 1e6) / CLK_TCK;
}

/** ProcessCpu is one process of a tree: its pid, its name (argv[0]) and its user+system CPU so far, in µs. */
export interface ProcessCpu {
  readonly pid: number;
  readonly name: string;
  readonly us: number;
}

/**
 * treeCpu lists pid and its descendants (parents before children) with each one's CPU so far;
 * cpuMicros is their sum. The name is argv[0], where squid's kids say what they are (`(squid-1)`,
 * `(squid-coord-3)`).
 */
export function treeCpu(pid: number): ProcessCpu[] {
  const out: ProcessCpu[] = [];
  for (const p of processTree(pid)) {
    const f = statFields(p);
    if (f === null) continue;
    let name = '';
    try {
      name = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] ?? '';
    } catch {
      // Exited between reading its stat and its command line: the CPU read is still good.
    }
    out.push({ pid: p, name, us: ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK });
  }
  return out;
}

/**
 * selfAndReapedMicros is the CPU of this process plus that of the children it has waited for
 * (cutime and cstime, fields 16 and 17: wrk and loadgen runs are counted once they exit), in µs.
 */
export function selfAndReapedMicros(): number {
  const u = process.cpuUsage();
  const f = statFields(process.pid);
  const ticks = f === null ? 0 : Number(f[13]) + Number(f[14]);
  return u.user + u.system + (ticks * 1e6) / CLK_TCK;
}

/** minorFaults is the count of minor page faults so far of pid and its descendants (field 10), reaped ones included (pid's field 11), as cpuMicros. */
export function minorFaults(pid: number): number {
  let n = 0;
  for (const p of processTree(pid)) {
    const f = statFields(p);
    if (f !== null) n += Number(f[7]) + (p === pid ? Number(f[8]) : 0);
  }
  return n;
}

/** CoreTimes is one core's busy and steal time so far, in µs (from /proc/stat). */
export interface CoreTimes {
  readonly busyUs: number;
  readonly stealUs: number;
}

/**
 * coreTimes reads one core's line of /proc/stat: busy is user+nice+system+irq+softirq (what ran on
 * it), steal is time the hypervisor gave to someone else while this core wanted to run.
 */
export function coreTimes(core: number): CoreTimes {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (line === undefined) return { busyUs: NaN, stealUs: NaN };
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const toUs = (t: number | undefined) => ((t ?? 0) * 1e6) / CLK_TCK;
  return { busyUs: toUs(user! + nice! + system! + irq! + softirq!), stealUs: toUs(steal) };
}

/** rssKiB is the resident set (VmRSS) of pid and its descendants, in KiB; shared pages count once per process. */
export function rssKiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // Exited between listing and reading.
    }
  }
  return kib;
}

/**
 * pssKiB is the proportional set size (Pss of /proc/PID/smaps_rollup) of pid and its descendants,
 * in KiB: a page shared by n processes counts 1/n in each, so the sum over a tree counts the node
 * binary and other shared pages once, where summed VmRSS counts them once per process.
 */
export function pssKiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // Exited between listing and reading.
    }
  }
  return kib;
}

/** RssSampler records the peak RSS of a process tree while it runs. */
export class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(
    readonly pid: number,
    everyMs = 200,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }
  #sample(): void {
    this.#peak = Math.max(this.#peak, rssKiB(this.pid));
  }
  /** stop takes a last sample and returns the peak in KiB. */
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    return this.#peak;
  }
}

/** freePort asks the kernel for an unused loopback port (released again before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** waitForPort polls until something accepts TCP on addr, the child dies, or timeoutMs passes. */
export async function waitForPort(addr: HostPort, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void child.exited.then(() => (dead = true));
  while (Date.now() < deadline) {
    if (dead) throw new Error(`${child.name} exited during startup: ${child.stderrTail().trim().slice(-2000)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: addr.host, port: addr.port });
      s.setTimeout(500, () => s.destroy());
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.once('close', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${child.name} did not listen on ${addr.host}:${addr.port} within ${timeoutMs} ms: ${child.stderrTail().trim().slice(-2000)}`);
}

/** sleep resolves after ms. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
