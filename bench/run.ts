/**
 * run: `npm run bench` — Tollgate against no proxy and squid on this machine, in one run.
 *
 *   core 1: wrk / loadgen  ->  core 0: proxy under test  ->  core 1: origin
 *
 * Contenders are measured in alternation: each round runs every phase for every contender, in a
 * rotated order, so drift lands on all of them alike, and starts its own instance of every proxy
 * (warmed up, then stopped at the round's end), so no one instance's luck is in every round. Phases:
 *   keep-alive GETs (wrk), new-connection GETs (wrk, `Connection: close`),
 *   CONNECT setup (loadgen), bulk download and upload through a tunnel (loadgen).
 * The proxy's CPU comes from /proc/PID/stat around each measurement, its RSS from /proc/PID/status.
 * Each measurement waits for a quiet machine first and is retried once if other work disturbed it
 * (see noise.ts); both are bounded by a budget so the run always ends.
 *
 * Flags: --rounds N (default 3), --quick (1 round, short phases), --access-log file|off (default file),
 * --no-build (measure dist/ as it is, even when older than src/).
 * Progress goes to stderr; the report to stdout and bench/results/latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BASE_OPTIONS, BenchError, ensureBuild, progress, runBase } from './build.js';
import { BENCH_USER, CONTENDERS, direct, isUnavailable, smallUrl, startNaive, startOrigin, startSquid, startTollgate, type Contender, type ContenderName, type Origin } from './contenders.js';
import { runBulk, runConnects, runGets, warmUp as warmUpProxy } from './load.js';
import { isDisturbed, NOISE_LIMIT_PCT, NoiseMeter } from './noise.js';
import { Children, commandVersion, cpuMicros, findCommand, RssSampler, rssKiB, sleep, LOAD_CORE, PROXY_CORE } from './proc.js';
import { evaluateTargets, renderAccessLogs, renderInterference, renderTable, renderTargets, Results, toJson, type MetricKey } from './report.js';

const REPO = path.resolve(import.meta.dirname, '..');
const RESULTS_FILE = path.join(import.meta.dirname, 'results', 'latest.json');
/** WATCHDOG_MS_PER_ROUND bounds the whole run (times the rounds); past it everything is killed and the bench fails. */
const WATCHDOG_MS_PER_ROUND = 5 * 60_000;
const MiB = 1 << 20;

/** Settings are the knobs of one run; they are written into the JSON with the results. */
interface Settings {
  readonly rounds: number;
  readonly keepAlive: { readonly seconds: number; readonly connections: number };
  readonly newConnections: { readonly seconds: number; readonly connections: number };
  readonly connect: { readonly seconds: number; readonly concurrency: number };
  readonly bulk: { readonly bytes: number; readonly timeoutMs: number };
  readonly warmupSeconds: number;
  readonly accessLog: boolean;
  /** Longest wait for a quiet machine before one measurement, and in all. */
  readonly quietWaitMs: number;
  readonly quietBudgetMs: number;
  /** Disturbed measurements redone, at most once each and this many in all. */
  readonly retries: number;
  /** Rebuild dist/ when it is older than src/. */
  readonly build: boolean;
}

function settingsFromArgs(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: { ...BASE_OPTIONS, 'access-log': { type: 'string' } },
  });
  const { quick, base } = runBase(values);
  const log = values['access-log'] ?? 'file';
  if (log !== 'file' && log !== 'off') throw new BenchError('--access-log must be file or off');
  return {
    ...base,
    keepAlive: { seconds: quick ? 2 : 5, connections: 50 },
    newConnections: { seconds: quick ? 2 : 4, connections: 50 },
    connect: { seconds: quick ? 2 : 4, concurrency: 32 },
    bulk: { bytes: (quick ? 128 : 512) * MiB, timeoutMs: 60_000 },
    warmupSeconds: quick ? 1 : 2,
    accessLog: log === 'file',
  };
}

/** Measurement is what one phase produced for one contender; `problem` is kept as a failure note. */
interface Measurement {
  readonly figures: Partial<Record<MetricKey, number>>;
  readonly peakRssKiB: number | null;
  readonly problem?: string;
}

/** Charged is a load's result with the proxy's CPU and peak RSS over it (null for direct). */
interface Charged<T> {
  readonly result: T;
  readonly cpuUs: number | null;
  readonly peakRssKiB: number | null;
}

const perOp = (cpuUs: number | null, ops: number) => (cpuUs === null || ops === 0 ? NaN : cpuUs / ops);

/** Bench holds the running pieces of one run and knows how to measure each phase. */
class Bench {
  readonly results = new Results();
  readonly contenders: Contender[] = [];
  readonly haveWrk = findCommand('wrk') !== null;
  readonly noise: NoiseMeter;
  /** Requests and tunnels each contender answered (warm-up included), to hold against its access log. */
  readonly answered = new Map<ContenderName, number>();

  constructor(
    readonly children: Children,
    readonly settings: Settings,
    readonly origin: Origin,
  ) {
    this.noise = new NoiseMeter([PROXY_CORE, LOAD_CORE], () => [origin.pid, ...this.contenders.flatMap((c) => (c.pid === null ? [] : [c.pid]))]);
  }

  get smallUrl(): string {
    return smallUrl(this.origin);
  }

  tally(c: Contender, n: number): void {
    this.answered.set(c.name, (this.answered.get(c.name) ?? 0) + n);
  }

  /** charged runs one load and reads the proxy's CPU (utime+stime) just before and after it, sampling RSS meanwhile. */
  async charged<T>(c: Contender, load: () => Promise<T>): Promise<Charged<T>> {
    if (c.pid === null) return { result: await load(), cpuUs: null, peakRssKiB: null };
    const sampler = new RssSampler(c.pid);
    const before = cpuMicros(c.pid);
    try {
      const result = await load();
      return { result, cpuUs: cpuMicros(c.pid) - before, peakRssKiB: sampler.stop() };
    } finally {
      sampler.stop();
    }
  }

  async keepAlive(c: Contender): Promise<Measurement> {
    const s = this.settings.keepAlive;
    const run = { connectTo: c.proxy ?? this.origin.http, url: this.smallUrl, viaProxy: c.proxy !== null, newConnections: false, connections: s.connections, durationS: s.seconds };
    const { result: r, cpuUs, peakRssKiB } = await this.charged(c, () => runGets(this.children, run));
    this.tally(c, r.ok);
    // The same load again at once: the first run starts after the proxy sat idle while the others
    // were measured; the second shows it under load that has been going on for a while.
    const again = await this.charged(c, () => runGets(this.children, run));
    this.tally(c, again.result.ok);
    const figures = { 'ka.rps': r.rps, 'ka.p50Ms': r.p50Ms, 'ka.p99Ms': r.p99Ms, 'ka.cpuUs': perOp(cpuUs, r.ok), 'ka2.rps': again.result.rps, 'ka2.p99Ms': again.result.p99Ms, 'ka2.cpuUs': perOp(again.cpuUs, again.result.ok) };
    return { figures: { ...figures, 'ka.errors': r.errors + again.result.errors }, peakRssKiB: Math.max(peakRssKiB ?? 0, again.peakRssKiB ?? 0) || null };
  }

  async newConnections(c: Contender): Promise<Measurement> {
    const s = this.settings.newConnections;
    const run = { connectTo: c.proxy ?? this.origin.http, url: this.smallUrl, viaProxy: c.proxy !== null, newConnections: true, connections: s.connections, durationS: s.seconds };
    const { result: r, cpuUs, peakRssKiB } = await this.charged(c, () => runGets(this.children, run));
    this.tally(c, r.ok);
    return { figures: { 'nc.rps': r.rps, 'nc.p50Ms': r.p50Ms, 'nc.errors': r.errors, 'nc.cpuUs': perOp(cpuUs, r.ok) }, peakRssKiB };
  }

  async connects(c: Contender): Promise<Measurement> {
    const s = this.settings.connect;
    const proxy = c.proxy!;
    const { result: r, cpuUs, peakRssKiB } = await this.charged(c, () => runConnects(this.children, proxy, this.origin.tcp, s.concurrency, s.seconds * 1000));
    this.tally(c, r.ok);
    return { figures: { 'ct.rate': r.ok / (r.elapsedMs / 1000), 'ct.p50Ms': r.p50Us / 1000, 'ct.errors': r.errors, 'ct.cpuUs': perOp(cpuUs, r.ok) }, peakRssKiB };
  }

  async bulk(c: Contender, direction: 'down' | 'up'): Promise<Measurement> {
    const s = this.settings.bulk;
    const [rate, errors, cpu] = direction === 'down' ? (['bulk.MBps', 'bulk.errors', 'bulk.cpuMsPerGiB'] as const) : (['up.MBps', 'up.errors', 'up.cpuMsPerGiB'] as const);
    const { result: r, cpuUs, peakRssKiB } = await this.charged(c, () => runBulk(this.children, c.proxy, this.origin.tcp, s.bytes, s.timeoutMs, direction));
    if (r.error !== null) return { figures: { [errors]: 1 }, peakRssKiB, problem: `bulk ${direction === 'down' ? 'download' : 'upload'}: ${r.error}` };
    if (c.proxy !== null) this.tally(c, 1);
    return { figures: { [rate]: r.bytes / 1e6 / (r.elapsedMs / 1000), [errors]: 0, [cpu]: cpuUs === null ? NaN : cpuUs / 1000 / (r.bytes / (1 << 30)) }, peakRssKiB };
  }
}

/** Phase is one kind of load; `applies` says which contenders it is for. */
interface Phase {
  readonly name: string;
  readonly needsWrk: boolean;
  readonly applies: (c: Contender) => boolean;
  readonly run: (b: Bench, c: Contender) => Promise<Measurement>;
}

/** PHASES is the order of phases within a round. */
const PHASES: readonly Phase[] = [
  { name: 'keep-alive GETs', needsWrk: true, applies: () => true, run: (b, c) => b.keepAlive(c) },
  { name: 'new-connection GETs', needsWrk: true, applies: () => true, run: (b, c) => b.newConnections(c) },
  { name: 'CONNECT setup', needsWrk: false, applies: (c) => c.proxy !== null, run: (b, c) => b.connects(c) },
  { name: 'bulk download through tunnel', needsWrk: false, applies: () => true, run: (b, c) => b.bulk(c, 'down') },
  { name: 'bulk upload through tunnel', needsWrk: false, applies: () => true, run: (b, c) => b.bulk(c, 'up') },
];

function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = xs.length === 0 ? 0 : by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** Budget is what is left for waiting on a quiet machine and for redoing disturbed measurements. */
interface Budget {
  quietMs: number;
  retries: number;
}

/**
 * measureOnce waits for a quiet machine, runs one phase for one contender, and records it — unless
 * other work disturbed it and the budget allows one more try. Per-round RSS peaks go to `peaks`.
 */
async function measureOnce(bench: Bench, phase: Phase, c: Contender, round: number, budget: Budget, peaks: Map<ContenderName, number>): Promise<void> {
  const { results, settings } = bench;
  for (let attempt = 1; ; attempt++) {
    if (budget.quietMs > 0) {
      const w = await bench.noise.waitForQuiet(Math.min(settings.quietWaitMs, budget.quietMs));
      budget.quietMs -= w.waitedMs;
      if (!w.quiet) progress(`  machine still busy after ${(w.waitedMs / 1000).toFixed(1)} s; measuring anyway`);
    }
    const snap = bench.noise.snapshot();
    let m: Measurement;
    try {
      m = await phase.run(bench, c);
    } catch (err) {
      results.failures.push({ round, contender: c.name, phase: phase.name, message: (err as Error).message });
      progress(`  failed: ${(err as Error).message}`);
      return;
    }
    const n = bench.noise.since(snap);
    if (isDisturbed(n) && attempt === 1 && budget.retries > 0) {
      budget.retries--;
      progress(`  disturbed (${n.otherPct.toFixed(0)}% of a core went to other work): measuring again`);
      continue;
    }
    results.interference.push({ round, phase: phase.name, contender: c.name, otherPct: n.otherPct, stealPct: n.stealPct, attempts: attempt });
    for (const [k, v] of Object.entries(m.figures)) results.add(c.name, k as MetricKey, v, round);
    if (m.problem !== undefined) results.failures.push({ round, contender: c.name, phase: phase.name, message: m.problem });
    if (m.peakRssKiB !== null) peaks.set(c.name, Math.max(m.peakRssKiB, peaks.get(c.name) ?? 0));
    return;
  }
}

/**
 * runRounds alternates contenders over the rounds, phase by phase, each round in a rotated order.
 * Every round starts its own instance of each proxy and stops it at the end: two instances of one
 * build can differ by 15-20% on this VM, and one instance kept for the whole run would put its luck
 * into every round instead of spreading it over them.
 */
async function runRounds(bench: Bench): Promise<void> {
  const { settings, results } = bench;
  const budget: Budget = { quietMs: settings.quietBudgetMs, retries: settings.retries };
  for (let round = 1; round <= settings.rounds; round++) {
    await startContenders(bench, round);
    try {
      await sleep(1000);
      for (const c of bench.contenders) if (c.pid !== null) results.add(c.name, 'rss.idleMiB', rssKiB(c.pid) / 1024, round);
      await warmUp(bench);
      const order = rotate(bench.contenders, round - 1);
      const peaks = new Map<ContenderName, number>();
      for (const phase of PHASES) {
        if (phase.needsWrk && !bench.haveWrk) continue;
        for (const c of order) {
          if (!phase.applies(c)) continue;
          progress(`round ${round}/${settings.rounds}: ${phase.name} — ${c.name}`);
          await measureOnce(bench, phase, c, round, budget, peaks);
        }
      }
      for (const [name, kib] of peaks) results.add(name, 'rss.loadMiB', kib / 1024, round);
      await sleep(1500);
      for (const c of bench.contenders) if (c.pid !== null) results.add(c.name, 'rss.afterMiB', rssKiB(c.pid) / 1024, round);
    } finally {
      await stopContenders(bench);
    }
  }
}

/**
 * startContenders starts this round's Tollgates, naive proxy and squid (direct needs nothing), in
 * an order rotated by round, and records who could not run.
 */
async function startContenders(bench: Bench, round: number): Promise<void> {
  const { children, origin, settings, results } = bench;
  bench.contenders.push(direct());
  const starts = [
    () => startNaive(children),
    () => startTollgate(children, origin, { accessLog: settings.accessLog }),
    () => startTollgate(children, origin, { accessLog: settings.accessLog, identified: true }),
    () => startSquid(children, origin, settings.accessLog),
  ];
  for (const start of rotate(starts, round - 1)) {
    const c = await start();
    if (isUnavailable(c)) {
      if (!results.status.has(c.name)) results.status.set(c.name, { ran: false, reason: c.reason });
      else results.failures.push({ round, contender: c.name, phase: 'start', message: c.reason });
      progress(`${c.name} skipped in round ${round}: ${c.reason}`);
    } else bench.contenders.push(c);
  }
  bench.contenders.sort((a, b) => CONTENDERS.indexOf(a.name) - CONTENDERS.indexOf(b.name));
  for (const c of bench.contenders) if (!results.status.has(c.name)) results.status.set(c.name, { ran: true, description: c.description });
}

/** stopContenders stops this round's instances and adds what their access logs held to the run's count. */
async function stopContenders(bench: Bench): Promise<void> {
  const { results } = bench;
  for (const c of bench.contenders.splice(0)) {
    await c.stop();
    if (c.accessLog === undefined) continue;
    const sum = results.accessLogs.get(c.name) ?? { lines: 0, withLogin: 0, answered: 0, user: BENCH_USER };
    results.accessLogs.set(c.name, { ...sum, lines: sum.lines + c.accessLog.lines, withLogin: sum.withLogin + c.accessLog.withLogin });
  }
}

/** warmUp drives each proxy briefly (not recorded) so JIT, pools and allocator arenas reach steady state. */
async function warmUp(bench: Bench): Promise<void> {
  for (const c of bench.contenders) {
    if (c.proxy === null) continue;
    progress(`warming up ${c.name}`);
    bench.tally(c, await warmUpProxy(bench.children, c.proxy, bench.origin, bench.settings.warmupSeconds, bench.haveWrk));
  }
}

function header(bench: Bench, started: Date, machine: Record<string, unknown>): string[] {
  const { settings, results } = bench;
  const out = [
    `Tollgate bench — ${started.toISOString()} — ${settings.rounds} round(s), median [min–max] over rounds`,
    `machine: ${machine.cpu}, ${machine.cores} cores, kernel ${machine.kernel}, node ${machine.node}`,
    `placement: proxy on core ${PROXY_CORE}; wrk/loadgen and origin on core ${LOAD_CORE}${machine.pinned ? '' : ' (NOT pinned: taskset missing or fewer than 2 cores)'}`,
    `load: keep-alive ${settings.keepAlive.connections} conns × ${settings.keepAlive.seconds} s; new-connection ${settings.newConnections.connections} conns × ${settings.newConnections.seconds} s; ` +
      `CONNECT ${settings.connect.concurrency} loops × ${settings.connect.seconds} s; bulk ${settings.bulk.bytes / MiB} MiB each way, one stream`,
    `small GET: ${bench.smallUrl} → 200, 128-byte body; wrk: ${machine.wrk ?? 'not installed'}; ${machine.build}`,
  ];
  for (const name of CONTENDERS) {
    const s = results.status.get(name);
    out.push(`  ${name.padEnd(11)} ${s === undefined ? 'not started' : s.ran ? s.description : `SKIPPED: ${s.reason}`}`);
  }
  return out;
}

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const settings = settingsFromArgs(process.argv.slice(2));
  const children = new Children(os.availableParallelism() >= 2);
  const watchdogMs = WATCHDOG_MS_PER_ROUND * settings.rounds;
  const watchdog = setTimeout(() => {
    children.killAllNow();
    process.stderr.write(`bench: still running after ${watchdogMs / 1000} s; stopped everything\n`);
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();

  const build = ensureBuild(settings.build, progress);
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    kernel: os.release(),
    node: process.version,
    wrk: findCommand('wrk') !== null ? commandVersion('wrk', ['-v']) : null,
    pinned: children.pinning,
    loadAverageAtStart: os.loadavg(),
    build,
  };
  progress(`${settings.rounds} round(s); proxies on core ${PROXY_CORE}, load and origin on core ${LOAD_CORE}${children.pinning ? '' : ' (NOT pinned)'}`);

  const origin = await startOrigin(children);
  const bench = new Bench(children, settings, origin);
  const { results } = bench;
  if (!bench.haveWrk) results.skipped.push({ contender: 'all', what: 'keep-alive and new-connection GETs', reason: 'wrk is not installed (apt-get install -y wrk)' });
  try {
    await runRounds(bench);
  } finally {
    await origin.stop();
  }
  for (const [name, t] of results.accessLogs) results.accessLogs.set(name, { ...t, answered: bench.answered.get(name) ?? 0 });

  const elapsedS = (performance.now() - t0) / 1000;
  const targets = evaluateTargets(results);
  const out = header(bench, started, machine);
  out.push('', renderTable(results, settings.rounds), '', renderAccessLogs(results), '', renderInterference(results), '', 'Targets:', renderTargets(targets));
  if (results.skipped.length > 0 || results.failures.length > 0) {
    out.push('', 'Not measured:');
    for (const s of results.skipped) out.push(`  ${s.what} (${s.contender}): ${s.reason}`);
    for (const f of results.failures) out.push(`  round ${f.round} ${f.phase} (${f.contender}): ${f.message}`);
  }
  out.push('', `took ${elapsedS.toFixed(0)} s; results in ${path.relative(REPO, RESULTS_FILE)}`);
  process.stdout.write(out.join('\n') + '\n');

  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  const json = toJson(results, targets, { startedAt: started.toISOString(), elapsedS, machine, settings, rounds: settings.rounds });
  writeFileSync(RESULTS_FILE, JSON.stringify(json, null, 2) + '\n');
  return results.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof BenchError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exitCode = 1;
  },
);
