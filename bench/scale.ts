/**
 * scale: does a second worker process double what one node serves? `npm run bench:scale [-- --quick] [--rounds N] [--no-build]`
 *
 *   wrk (1 thread) ──► Tollgate, workers: 1 | 2   ──► origin (1 KiB GET)
 *                 └──► squid,   workers 1 | 2    ──┘
 *   nothing is pinned: the proxies, wrk and the origin share the machine's cores
 *
 * Four contenders run side by side: Tollgate identified (sign-in enforced, an IP surrogate seeded
 * so every request is identified from memory) with `workers: 1` (one process) and `workers: 2` (a
 * cluster primary and two workers sharing the listener), and squid with `workers 1` (`-N`, one
 * process) and `workers 2` (SMP: master, coordinator, two kids). Before measuring, every worker
 * must be seen serving: Tollgate's status page (`http://ip.<cloud>/?format=json`, through the
 * proxy, a new connection each time) must name as many worker pids as configured, and each
 * worker, Tollgate's and squid's, must do a share of the warm-up's work.
 *
 * Each round runs every phase (keep-alive GETs at 50 and 100 connections, new-connection GETs at
 * 50) for every contender, in an order rotated every round. A measurement reads the CPU
 * (utime+stime from /proc) of the proxy's whole process tree, the primary or master and every
 * worker, and of the rig (wrk, the origin, this process) before and after, waits for a quiet
 * machine first and is redone once when other work disturbed it (noise.ts).
 *
 * On a machine with as many cores as workers, wrk and the origin take CPU from the proxy's
 * workers, so the rate cannot double: the report shows the ceiling the rig's own CPU leaves, and the
 * proxy CPU per request, which shows whether two workers are as efficient as one.
 *
 * Progress goes to stderr; the report to stdout and bench/results/scale-latest.json.
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BASE_OPTIONS, BenchError, ensureBuild, progress, runBase } from './build.js';
import { BENCH_USER, isUnavailable, startOrigin, startSquid, startTollgate, type Contender, type Origin } from './contenders.js';
import { runGets, type GetResult } from './load.js';
import { isDisturbed, NOISE_LIMIT_PCT, NoiseMeter, type Noise } from './noise.js';
import { Children, commandVersion, coreTimes, cpuMicros, findCommand, pssKiB, RssSampler, rssKiB, selfAndReapedMicros, sleep, treeCpu, type HostPort, type ProcessCpu } from './proc.js';

const REPO = path.resolve(import.meta.dirname, '..');
const RESULTS_FILE = path.join(import.meta.dirname, 'results', 'scale-latest.json');
const WATCHDOG_MS = 10 * 60_000;

/** The performance issue's targets for Tollgate, 2 workers against 1, keep-alive GETs at 50 connections. */
const TARGET_SCALING = 1.7;
const TARGET_CPU_RATIO = 1.1;
/** JUDGED is the phase the targets are judged on. */
const JUDGED = 'ka50';

/** STATUS_HOST is the status page on the config's default cloud (tollgate.test); Tollgate answers it itself. */
const STATUS_HOST = 'ip.tollgate.test';
/** A worker that did less than this share of its node's workers' CPU in the warm-up is not counted as serving. */
const MIN_WORKER_SHARE = 0.2;

/** PhaseDef is one wrk load. */
interface PhaseDef {
  readonly key: string;
  readonly title: string;
  readonly connections: number;
  readonly seconds: number;
  readonly newConnections: boolean;
}

/** Settings are the knobs of one run; they are written into the JSON with the results. */
interface Settings {
  readonly rounds: number;
  readonly phases: readonly PhaseDef[];
  readonly bodyBytes: number;
  readonly warmupSeconds: number;
  /** New connections that ask Tollgate's status page which worker answered. */
  readonly statusProbes: number;
  readonly quietWaitMs: number;
  readonly quietBudgetMs: number;
  readonly retries: number;
  readonly build: boolean;
}

function settingsFromArgs(argv: string[]): Settings {
  const { values } = parseArgs({ args: argv, options: BASE_OPTIONS });
  const { quick, base } = runBase(values);
  const ka = quick ? 2 : 5;
  const nc = quick ? 2 : 4;
  return {
    ...base,
    phases: [
      { key: 'ka50', title: 'keep-alive GET, 50 connections', connections: 50, seconds: ka, newConnections: false },
      { key: 'ka100', title: 'keep-alive GET, 100 connections', connections: 100, seconds: ka, newConnections: false },
      { key: 'nc50', title: 'new-connection GET, 50 connections', connections: 50, seconds: nc, newConnections: true },
    ],
    bodyBytes: 1024,
    warmupSeconds: quick ? 1 : 2,
    statusProbes: 24,
  };
}

/** Entry is one running contender: which proxy, how many workers, and the access-log tally. */
interface Entry {
  /** `tollgate ×1` and so on: the row label. */
  readonly label: string;
  readonly kind: 'tollgate' | 'squid';
  readonly workers: number;
  readonly c: Contender;
  /** Responses wrk saw answered (warm-up included), to hold against Tollgate's access log. */
  answered: number;
}

/**
 * roles names the processes of a contender's tree: for one process, `process`; for Tollgate's
 * cluster, `primary` and `worker N` (children by pid); for squid SMP, `master` and each kid by its
 * argv[0] (`squid-1`, `squid-coord-3`). Workers are what serves requests.
 */
function roles(e: Entry, procs: readonly ProcessCpu[]): { pid: number; role: string; worker: boolean; us: number }[] {
  const [root, ...kids] = procs;
  if (root === undefined) return [];
  if (e.workers === 1 && kids.length === 0) return [{ pid: root.pid, role: 'process', worker: true, us: root.us }];
  const sorted = [...kids].sort((a, b) => a.pid - b.pid);
  return [
    { pid: root.pid, role: e.kind === 'tollgate' ? 'primary' : 'master', worker: false, us: root.us },
    ...sorted.map((p, i) => {
      const squidName = /^\(([^)]+)\)$/.exec(p.name)?.[1];
      if (e.kind === 'squid') return { pid: p.pid, role: squidName ?? p.name, worker: squidName !== undefined && /^squid-\d+$/.test(squidName), us: p.us };
      return { pid: p.pid, role: `worker ${i + 1}`, worker: true, us: p.us };
    }),
  ];
}

/** cpuByRole is each role's CPU between two reads of a tree (a process that came or went counts what it has). */
function cpuByRole(e: Entry, before: readonly ProcessCpu[], after: readonly ProcessCpu[]): { role: string; worker: boolean; us: number }[] {
  const was = new Map(before.map((p) => [p.pid, p.us]));
  return roles(e, after).map((r) => ({ role: r.role, worker: r.worker, us: r.us - (was.get(r.pid) ?? 0) }));
}

/** Window is what one wrk run looked like: the proxy tree's CPU by role, the rig's CPU, both cores' busy time. */
interface Window {
  readonly result: GetResult;
  readonly wallUs: number;
  readonly proxyUs: number;
  readonly byRole: { role: string; worker: boolean; us: number }[];
  readonly rigUs: number;
  readonly busyUs: number;
  readonly peakRssKiB: number;
}

/** Rig is what a measurement needs. */
interface Rig {
  readonly children: Children;
  readonly settings: Settings;
  readonly origin: Origin;
  readonly cores: readonly number[];
  readonly url: string;
}

/** load runs wrk once through a contender, reading CPU around it: the proxy tree, the rig (wrk once reaped, the origin, this process), every core. */
async function load(rig: Rig, e: Entry, p: { connections: number; seconds: number; newConnections: boolean }): Promise<Window> {
  const pid = e.c.pid!;
  const busy = () => rig.cores.reduce((s, c) => s + coreTimes(c).busyUs, 0);
  const rigCpu = () => selfAndReapedMicros() + cpuMicros(rig.origin.pid);
  const sampler = new RssSampler(pid);
  try {
    const [t0, tree0, rig0, busy0] = [performance.now(), treeCpu(pid), rigCpu(), busy()];
    const result = await runGets(rig.children, { connectTo: e.c.proxy!, url: rig.url, viaProxy: true, newConnections: p.newConnections, connections: p.connections, durationS: p.seconds, core: null });
    const [t1, tree1, rig1, busy1] = [performance.now(), treeCpu(pid), rigCpu(), busy()];
    const byRole = cpuByRole(e, tree0, tree1);
    e.answered += result.ok;
    return { result, wallUs: (t1 - t0) * 1000, proxyUs: byRole.reduce((s, r) => s + r.us, 0), byRole, rigUs: rig1 - rig0, busyUs: busy1 - busy0, peakRssKiB: sampler.stop() };
  } finally {
    sampler.stop();
  }
}

/** figures turns a window into the per-round figures the report shows; CPU per request counts answered (2xx/3xx) requests. */
function figures(w: Window): Record<string, number> {
  const ok = w.result.ok;
  const out: Record<string, number> = {
    rps: w.result.rps,
    cpuUs: w.proxyUs / ok,
    rigUs: w.rigUs / ok,
    p50Ms: w.result.p50Ms,
    p99Ms: w.result.p99Ms,
    errors: w.result.errors,
    proxyCores: w.proxyUs / w.wallUs,
    rigCores: w.rigUs / w.wallUs,
    busyCores: w.busyUs / w.wallUs,
    rssMiB: w.peakRssKiB / 1024,
  };
  for (const r of w.byRole) out[`cpuUs.${r.role}`] = r.us / ok;
  return out;
}

/** Measured holds every kept sample: phase → contender label → figure → one value per round. */
interface Measured {
  readonly samples: Map<string, Map<string, Map<string, { round: number; value: number }[]>>>;
  readonly interference: { round: number; phase: string; contender: string; otherPct: number; stealPct: number; attempts: number; disturbed: boolean }[];
  /** Measurements that failed (`kept` false: no figures from them) or had errors (`kept` true). */
  readonly failures: { round: number; phase: string; contender: string; message: string; kept: boolean }[];
}

function add(rec: Measured, phase: string, contender: string, round: number, figs: Record<string, number>): void {
  const byContender = rec.samples.get(phase) ?? new Map<string, Map<string, { round: number; value: number }[]>>();
  rec.samples.set(phase, byContender);
  const byFigure = byContender.get(contender) ?? new Map<string, { round: number; value: number }[]>();
  byContender.set(contender, byFigure);
  for (const [k, v] of Object.entries(figs)) if (Number.isFinite(v)) byFigure.set(k, [...(byFigure.get(k) ?? []), { round, value: v }]);
}

function values(rec: Measured, phase: string, contender: string, key: string): { round: number; value: number }[] {
  return rec.samples.get(phase)?.get(contender)?.get(key) ?? [];
}

/** measure waits for a quiet machine, runs one phase through one contender, and keeps it, or redoes it once if it was disturbed. */
async function measure(rig: Rig, noise: NoiseMeter, phase: PhaseDef, e: Entry, round: number, rec: Measured, budget: { quietMs: number; retries: number }): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (budget.quietMs > 0) {
      const w = await noise.waitForQuiet(Math.min(rig.settings.quietWaitMs, budget.quietMs));
      budget.quietMs -= w.waitedMs;
      if (!w.quiet) progress(`  machine still busy after ${(w.waitedMs / 1000).toFixed(1)} s; measuring anyway`);
    }
    const snap = noise.snapshot();
    let w: Window;
    try {
      w = await load(rig, e, phase);
    } catch (err) {
      rec.failures.push({ round, phase: phase.key, contender: e.label, message: (err as Error).message, kept: false });
      progress(`  failed: ${(err as Error).message}`);
      return;
    }
    const n: Noise = noise.since(snap);
    if (isDisturbed(n) && attempt === 1 && budget.retries > 0) {
      budget.retries--;
      progress(`  disturbed (${n.otherPct.toFixed(0)}% of a core went to other work): measuring again`);
      continue;
    }
    rec.interference.push({ round, phase: phase.key, contender: e.label, otherPct: n.otherPct, stealPct: n.stealPct, attempts: attempt, disturbed: isDisturbed(n) });
    if (w.result.ok === 0) {
      rec.failures.push({ round, phase: phase.key, contender: e.label, message: `no request answered (${w.result.errors} errors)`, kept: false });
      return;
    }
    if (w.result.errors > 0) rec.failures.push({ round, phase: phase.key, contender: e.label, message: `${w.result.errors} errors (non-2xx, socket errors, timeouts); figures kept`, kept: true });
    add(rec, phase.key, e.label, round, figures(w));
    return;
  }
}

/** StatusAnswer is what one status-page request said about who answered it. */
interface StatusAnswer {
  readonly workerPid: number | null;
  readonly identifiedBy: string;
  readonly loginName: string | null;
}

/** askStatus asks Tollgate's status page, through the proxy on a new connection, which worker answered and how the request was identified. */
function askStatus(proxy: HostPort): Promise<StatusAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: proxy.host, port: proxy.port, path: `http://${STATUS_HOST}/?format=json`, headers: { host: STATUS_HOST, accept: 'application/json', connection: 'close' }, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (s: string) => (body += s));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`status page answered ${res.statusCode}: ${body.slice(0, 200)}`));
          try {
            const j = JSON.parse(body) as { worker?: { pid?: number } | null; identifiedBy?: string; user?: { loginName?: string } | null };
            resolve({ workerPid: j.worker?.pid ?? null, identifiedBy: String(j.identifiedBy), loginName: j.user?.loginName ?? null });
          } catch (err) {
            reject(new Error(`status page JSON did not parse: ${(err as Error).message}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('status page did not answer in 5 s')));
    req.on('error', reject);
  });
}

/** Serving is the check that every configured worker of a contender serves, made before measuring. */
interface Serving {
  readonly ok: boolean;
  readonly detail: string;
  /** Tollgate: pid → status-page answers; squid: none. */
  readonly answeredBy?: Record<string, number>;
  /** Each process's share of the warm-up's CPU, by role. */
  readonly warmupShares: Record<string, number>;
}

/**
 * waitForWorkers polls until a contender's tree holds its workers: Tollgate's primary forks the
 * second worker only once the first is up, so the listener accepts before the node is complete.
 * For Tollgate it asks the status page until `workers` distinct pids answered (one process answers
 * with `worker: null`), each a child of the primary, each identifying the request by surrogate.
 */
async function waitForWorkers(e: Entry, probes: number): Promise<{ ok: boolean; detail: string; answeredBy?: Record<string, number> }> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const workerPids = new Set(roles(e, treeCpu(e.c.pid!)).filter((r) => r.worker).map((r) => r.pid));
    if (workerPids.size < e.workers) {
      last = `${workerPids.size} of ${e.workers} worker processes running`;
      await sleep(250);
      continue;
    }
    if (e.kind === 'squid') return { ok: true, detail: `${workerPids.size} worker processes running` };
    const answeredBy: Record<string, number> = {};
    const problems: string[] = [];
    for (let i = 0; i < probes; i++) {
      let a: StatusAnswer;
      try {
        a = await askStatus(e.c.proxy!);
      } catch (err) {
        problems.push((err as Error).message);
        break;
      }
      const pid = a.workerPid ?? e.c.pid!;
      answeredBy[pid] = (answeredBy[pid] ?? 0) + 1;
      if (a.identifiedBy !== 'surrogate' || a.loginName !== BENCH_USER) problems.push(`identified by ${a.identifiedBy} as ${a.loginName ?? 'nobody'}`);
      if (!workerPids.has(pid)) problems.push(`answered by pid ${pid}, not a worker of this node`);
    }
    const pids = Object.keys(answeredBy);
    const who = pids.map((p) => `${p} (${answeredBy[p]})`).join(', ');
    if (problems.length > 0) return { ok: false, detail: `status page: ${problems[0]}`, answeredBy };
    if (pids.length === e.workers) return { ok: true, detail: `status page answered by pid ${who} of ${probes} new connections, each identified as ${BENCH_USER} by surrogate`, answeredBy };
    last = `status page answered by ${pids.length} of ${e.workers} workers: ${who}`;
    await sleep(250);
  }
  return { ok: false, detail: `after 30 s: ${last}` };
}

/** warmUp runs wrk briefly through a contender (not recorded) and returns each role's share of the proxy tree's CPU meanwhile. */
async function warmUp(rig: Rig, e: Entry): Promise<Record<string, number>> {
  const w = await load(rig, e, { connections: 50, seconds: rig.settings.warmupSeconds, newConnections: false });
  const shares: Record<string, number> = {};
  for (const r of w.byRole) shares[r.role] = w.proxyUs > 0 ? r.us / w.proxyUs : 0;
  return shares;
}

/** workersBalanced says whether each worker did at least MIN_WORKER_SHARE of the workers' CPU. */
function workersBalanced(e: Entry, shares: Record<string, number>): { ok: boolean; detail: string } {
  const ws = roles(e, treeCpu(e.c.pid!)).filter((r) => r.worker).map((r) => r.role);
  const total = ws.reduce((s, r) => s + (shares[r] ?? 0), 0);
  const each = ws.map((r) => ({ role: r, share: total > 0 ? (shares[r] ?? 0) / total : 0 }));
  const idle = each.filter((x) => x.share < MIN_WORKER_SHARE);
  const text = each.map((x) => `${x.role} ${(100 * x.share).toFixed(0)}%`).join(', ');
  return { ok: idle.length === 0, detail: `workers' CPU in the warm-up: ${text}` };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function fmt(x: number, digits: number): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** figure formats one figure as `median [min–max]`, or `—` when no round kept it. */
function figure(rec: Measured, phase: string, contender: string, key: string, digits: number): string {
  const xs = values(rec, phase, contender, key).map((v) => v.value);
  if (xs.length === 0) return '—';
  return xs.length === 1 ? fmt(xs[0]!, digits) : `${fmt(median(xs), digits)} [${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}]`;
}

/** table lays out a header and rows in columns as wide as their widest cell, indented by two spaces. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('   ')}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Ratio is a 2-worker figure over the 1-worker figure: of the medians, and within each round. */
interface Ratio {
  readonly value: number | null;
  readonly rounds: readonly number[];
}

function ratio(rec: Measured, phase: string, two: string, one: string, key: string): Ratio {
  const a = values(rec, phase, two, key);
  const b = values(rec, phase, one, key);
  if (a.length === 0 || b.length === 0) return { value: null, rounds: [] };
  const byRound = new Map(b.map((v) => [v.round, v.value]));
  const rounds = a.filter((v) => byRound.has(v.round)).map((v) => v.value / byRound.get(v.round)!);
  return { value: median(a.map((v) => v.value)) / median(b.map((v) => v.value)), rounds };
}

/** Target is one of the issue's targets, judged on the ratio of the medians. */
interface Target {
  readonly name: string;
  readonly op: '>=' | '<=';
  readonly limit: number;
  readonly ratio: Ratio;
  readonly verdict: 'MET' | 'NOT MET' | 'NOT EVALUATED';
  readonly why?: string;
}

function judge(name: string, r: Ratio, op: '>=' | '<=', limit: number, blockers: readonly string[], warnings: readonly string[]): Target {
  if (r.value === null) return { name, op, limit, ratio: r, verdict: 'NOT EVALUATED', why: 'a contender has no kept round' };
  if (blockers.length > 0) return { name, op, limit, ratio: r, verdict: 'NOT EVALUATED', why: blockers.join('; ') };
  const met = op === '>=' ? r.value >= limit : r.value <= limit;
  return { name, op, limit, ratio: r, verdict: met ? 'MET' : 'NOT MET', ...(warnings.length > 0 ? { why: warnings.join('; ') } : {}) };
}

/** AccessLogCheck is Tollgate's access log, counted after it stopped, against the responses wrk saw. */
interface AccessLogCheck {
  readonly label: string;
  readonly lines: number;
  readonly withLogin: number;
  readonly answered: number;
  readonly ok: boolean;
}

function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const settings = settingsFromArgs(process.argv.slice(2));
  if (findCommand('wrk') === null) throw new BenchError('wrk is not installed (apt-get install -y wrk): every figure of this bench comes from it');
  const children = new Children(true);
  const watchdog = setTimeout(() => {
    children.killAllNow();
    process.stderr.write(`bench: still running after ${WATCHDOG_MS / 1000} s; stopped everything\n`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  const build = ensureBuild(settings.build, progress);
  const cores = [...Array(os.availableParallelism()).keys()];
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: cores.length,
    kernel: os.release(),
    node: process.version,
    wrk: commandVersion('wrk', ['-v']),
    loadAverageAtStart: os.loadavg(),
    build,
    clusterSchedPolicy: process.env.NODE_CLUSTER_SCHED_POLICY ?? null,
  };
  progress(`${settings.rounds} round(s); nothing pinned, ${cores.length} cores shared by the proxies, wrk and the origin`);

  const origin = await startOrigin(children, { core: null, bodyBytes: settings.bodyBytes });
  const rig: Rig = { children, settings, origin, cores, url: `http://${origin.http.host}:${origin.http.port}/kib` };
  const entries: Entry[] = [];
  const unavailable: { label: string; reason: string }[] = [];
  const serving = new Map<string, Serving>();
  const rec: Measured = { samples: new Map(), interference: [], failures: [] };
  /** Memory of each tree, idle: after start and after the rounds; RSS summed over the processes, and PSS (shared pages once). */
  const memory = new Map<string, { idleRssMiB: number; idlePssMiB: number; afterRssMiB?: number; afterPssMiB?: number }>();
  const noise = new NoiseMeter(cores, () => [origin.pid, ...entries.map((e) => e.c.pid!)]);
  const accessLogs: AccessLogCheck[] = [];
  try {
    const starts: { label: string; kind: Entry['kind']; workers: number; start: () => ReturnType<typeof startTollgate> }[] = [
      { label: 'tollgate ×1', kind: 'tollgate', workers: 1, start: () => startTollgate(children, origin, { accessLog: true, identified: true, workers: 1, core: null }) },
      { label: 'tollgate ×2', kind: 'tollgate', workers: 2, start: () => startTollgate(children, origin, { accessLog: true, identified: true, workers: 2, core: null }) },
      { label: 'squid ×1', kind: 'squid', workers: 1, start: () => startSquid(children, origin, true, { workers: 1, core: null }) },
      { label: 'squid ×2', kind: 'squid', workers: 2, start: () => startSquid(children, origin, true, { workers: 2, core: null }) },
    ];
    for (const s of starts) {
      progress(`starting ${s.label}`);
      const c = await s.start();
      if (isUnavailable(c)) {
        unavailable.push({ label: s.label, reason: c.reason });
        progress(`${s.label} skipped: ${c.reason}`);
      } else entries.push({ label: s.label, kind: s.kind, workers: s.workers, c, answered: 0 });
    }
    for (const e of entries) {
      const w = await waitForWorkers(e, settings.statusProbes);
      progress(`${e.label}: ${w.detail}`);
      serving.set(e.label, { ok: w.ok, detail: w.detail, ...(w.answeredBy ? { answeredBy: w.answeredBy } : {}), warmupShares: {} });
    }
    await sleep(1000);
    for (const e of entries) memory.set(e.label, { idleRssMiB: rssKiB(e.c.pid!) / 1024, idlePssMiB: pssKiB(e.c.pid!) / 1024 });
    for (const e of entries) {
      progress(`warming up ${e.label}`);
      const shares = await warmUp(rig, e);
      const s = serving.get(e.label)!;
      const b = e.workers > 1 ? workersBalanced(e, shares) : { ok: true, detail: '' };
      const detail = b.detail === '' ? s.detail : `${s.detail}; ${b.detail}${b.ok ? '' : ` (a worker below ${100 * MIN_WORKER_SHARE}%)`}`;
      serving.set(e.label, { ...s, ok: s.ok && b.ok, detail, warmupShares: shares });
    }
    const budget = { quietMs: settings.quietBudgetMs, retries: settings.retries };
    for (let round = 1; round <= settings.rounds; round++) {
      const order = rotate(entries, round - 1);
      for (const phase of settings.phases) {
        for (const e of order) {
          progress(`round ${round}/${settings.rounds}: ${phase.key} — ${e.label}`);
          await measure(rig, noise, phase, e, round, rec, budget);
        }
      }
    }
    await sleep(1500);
    for (const e of entries) memory.set(e.label, { ...memory.get(e.label)!, afterRssMiB: rssKiB(e.c.pid!) / 1024, afterPssMiB: pssKiB(e.c.pid!) / 1024 });
  } finally {
    for (const e of entries) {
      await e.c.stop();
      if (e.c.accessLog !== undefined) {
        const { lines, withLogin } = e.c.accessLog;
        // wrk does not count responses in flight when its time is up, so the log may hold a few more.
        accessLogs.push({ label: e.label, lines, withLogin, answered: e.answered, ok: withLogin === lines && lines >= e.answered });
      }
    }
    await origin.stop();
  }

  const label = (kind: string, n: number) => `${kind} ×${n}`;
  const has = (l: string) => entries.some((e) => e.label === l);
  const out: string[] = [
    `Worker scaling — ${started.toISOString()} — ${settings.rounds} round(s), median [min–max] over rounds`,
    `machine: ${machine.cpu}, ${machine.cores} cores, kernel ${machine.kernel}, node ${machine.node}, load average at start ${machine.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')}`,
    `placement: nothing pinned; the proxies, wrk (${machine.wrk}, 1 thread) and the origin share all ${machine.cores} cores`,
    `load: GET ${rig.url} → 200, ${settings.bodyBytes}-byte body, absolute-form through the proxy; ${settings.phases.map((p) => `${p.key} = ${p.title} × ${p.seconds} s`).join('; ')}`,
    `build: ${build}`,
  ];
  // Node's cluster reads this in the primary: `none` lets the workers accept for themselves instead of the primary handing each connection over.
  if (process.env.NODE_CLUSTER_SCHED_POLICY !== undefined) out.push(`environment: NODE_CLUSTER_SCHED_POLICY=${process.env.NODE_CLUSTER_SCHED_POLICY} (Tollgate's primary inherits it)`);
  for (const e of entries) out.push(`  ${e.label.padEnd(11)} ${e.c.description}`);
  for (const u of unavailable) out.push(`  ${u.label.padEnd(11)} SKIPPED: ${u.reason}`);
  out.push('', 'Workers serving (checked before measuring):');
  for (const e of entries) {
    const s = serving.get(e.label)!;
    out.push(`  ${e.label.padEnd(11)} ${s.ok ? 'ok' : 'NOT ALL SERVING'}: ${s.detail}`);
  }

  const labels = entries.map((e) => e.label);
  for (const phase of settings.phases) {
    out.push('', `${phase.title}, ${phase.seconds} s (proxy CPU: the whole process tree; rig: wrk + origin + this process; cores: CPU time ÷ wall time)`);
    out.push(
      ...table(
        ['', 'req/s', 'proxy CPU/req', 'rig CPU/req', 'p50', 'p99', 'proxy cores', 'rig cores', 'busy cores', 'RSS peak', 'errors'],
        labels.map((l) => [
          l,
          figure(rec, phase.key, l, 'rps', 0),
          `${figure(rec, phase.key, l, 'cpuUs', 1)} µs`,
          `${figure(rec, phase.key, l, 'rigUs', 1)} µs`,
          `${figure(rec, phase.key, l, 'p50Ms', 2)} ms`,
          `${figure(rec, phase.key, l, 'p99Ms', 2)} ms`,
          figure(rec, phase.key, l, 'proxyCores', 2),
          figure(rec, phase.key, l, 'rigCores', 2),
          figure(rec, phase.key, l, 'busyCores', 2),
          `${figure(rec, phase.key, l, 'rssMiB', 1)} MiB`,
          String(values(rec, phase.key, l, 'errors').reduce((s, v) => s + v.value, 0)),
        ]),
      ),
    );
    const split = entries
      .filter((e) => e.workers > 1)
      .map((e) => {
        const keys = [...(rec.samples.get(phase.key)?.get(e.label)?.keys() ?? [])].filter((k) => k.startsWith('cpuUs.'));
        return `${e.label}: ${keys.map((k) => `${k.slice('cpuUs.'.length)} ${figure(rec, phase.key, e.label, k, 1)}`).join(', ')}`;
      });
    if (split.length > 0) out.push(`  proxy CPU per request by process (µs): ${split.join('; ')}`);
  }
  out.push('', 'Memory of the whole tree, idle (RSS summed over its processes counts shared pages once per process; PSS counts them once):');
  out.push(
    ...table(
      ['', 'RSS after start', 'PSS after start', 'RSS after the rounds', 'PSS after the rounds'],
      entries.map((e) => {
        const m = memory.get(e.label);
        const mib = (x: number | undefined) => (x === undefined ? '—' : `${fmt(x, 1)} MiB`);
        return [e.label, mib(m?.idleRssMiB), mib(m?.idlePssMiB), mib(m?.afterRssMiB), mib(m?.afterPssMiB)];
      }),
    ),
  );

  out.push('', 'Access log (Tollgate, counted after it stopped; answered = responses wrk saw, warm-up included):');
  for (const a of accessLogs) {
    const verdict = a.ok ? `every line names ${BENCH_USER}` : 'NOT every answered request identified and logged';
    out.push(`  ${a.label.padEnd(11)} ${fmt(a.lines, 0)} lines for ${fmt(a.answered, 0)} answered; ${fmt(a.withLogin, 0)} name a user — ${verdict}`);
  }

  const seen = rec.interference;
  const sortedOther = seen.map((i) => i.otherPct).sort((a, b) => a - b);
  const stayed = seen.filter((i) => i.disturbed);
  out.push(
    '',
    seen.length === 0
      ? 'Interference: nothing measured'
      : `Interference (CPU not the bench's, % of one core, during each kept measurement): median ${fmt(median(sortedOther), 1)}%, max ${fmt(sortedOther[sortedOther.length - 1]!, 1)}%; ` +
          `max steal ${fmt(Math.max(...seen.map((i) => i.stealPct)), 1)}%; ${seen.filter((i) => i.attempts > 1).length} of ${seen.length} redone; ${stayed.length} stayed disturbed` +
          (stayed.length > 0 ? `: ${stayed.map((i) => `round ${i.round} ${i.phase} ${i.contender} (${i.otherPct.toFixed(0)}%)`).join(', ')}` : ''),
  );

  // The targets need both Tollgates serving with every worker, and every answered request identified.
  const blockers: string[] = [];
  for (const l of [label('tollgate', 1), label('tollgate', 2)]) {
    if (!has(l)) blockers.push(`${l} did not run`);
    else if (!serving.get(l)!.ok) blockers.push(`${l}: not every worker served`);
  }
  for (const a of accessLogs) if (!a.ok) blockers.push(`${a.label}: the access log does not show every answered request identified`);
  for (const f of rec.failures) if (f.phase === JUDGED && f.contender.startsWith('tollgate') && !f.kept) blockers.push(`round ${f.round} ${f.contender}: ${f.message}`);
  const judgedDisturbed = stayed.filter((i) => i.phase === JUDGED && i.contender.startsWith('tollgate'));
  const warnings = judgedDisturbed.map((i) => `round ${i.round} ${i.contender} measured while other work took ${i.otherPct.toFixed(0)}% of a core (limit ${NOISE_LIMIT_PCT}%)`);
  // A ratio whose every round was taken on a busy machine says more about the other work than about the workers.
  for (const l of [label('tollgate', 1), label('tollgate', 2)]) {
    const kept = values(rec, JUDGED, l, 'rps').length;
    const busy = judgedDisturbed.filter((i) => i.contender === l).length;
    if (kept > 0 && busy >= kept) blockers.push(`every kept round of ${l} was measured while other work took over ${NOISE_LIMIT_PCT}% of a core`);
  }
  const tgRate = ratio(rec, JUDGED, label('tollgate', 2), label('tollgate', 1), 'rps');
  const tgCpu = ratio(rec, JUDGED, label('tollgate', 2), label('tollgate', 1), 'cpuUs');
  const targets = [
    judge(`Tollgate keep-alive GET rate at 50 connections, 2 workers ÷ 1 worker ≥ ${TARGET_SCALING}×`, tgRate, '>=', TARGET_SCALING, blockers, warnings),
    judge(`Tollgate proxy CPU per request, 2 workers ÷ 1 worker ≤ ${TARGET_CPU_RATIO.toFixed(2)}`, tgCpu, '<=', TARGET_CPU_RATIO, blockers, warnings),
  ];
  const r = (x: Ratio) => (x.value === null ? '—' : `${fmt(x.value, 2)}×${x.rounds.length > 1 ? ` (per round ${x.rounds.map((v) => `${fmt(v, 2)}×`).join(', ')})` : ''}`);

  out.push('', 'Scaling, 2 workers ÷ 1 worker (ratio of the medians; per round: both measured in the same round):');
  const scaling: Record<string, Record<string, { rate: Ratio; cpu: Ratio; ceiling: number | null }>> = {};
  for (const phase of settings.phases) {
    for (const kind of ['tollgate', 'squid'] as const) {
      const two = label(kind, 2);
      const one = label(kind, 1);
      if (!has(two) || !has(one)) continue;
      const rate = ratio(rec, phase.key, two, one, 'rps');
      const cpu = ratio(rec, phase.key, two, one, 'cpuUs');
      // If every request cost what it costs with one worker, proxy and rig together, all cores busy
      // would carry at most this rate: the most a second worker can add on this machine.
      const per = values(rec, phase.key, one, 'cpuUs').map((v) => v.value);
      const rigPer = values(rec, phase.key, one, 'rigUs').map((v) => v.value);
      const rate1 = values(rec, phase.key, one, 'rps').map((v) => v.value);
      const ceiling = per.length > 0 && rigPer.length > 0 && rate1.length > 0 ? (cores.length * 1e6) / (median(per) + median(rigPer)) / median(rate1) : null;
      (scaling[phase.key] ??= {})[kind] = { rate, cpu, ceiling };
      out.push(
        `  ${phase.key.padEnd(5)} ${kind.padEnd(8)} rate ${r(rate)}; proxy CPU per request ${r(cpu)}` +
          (ceiling === null ? '' : `; ceiling ${fmt(ceiling, 2)}× (${cores.length} cores ÷ (proxy + rig CPU per request with 1 worker) ÷ its rate)`),
      );
    }
  }

  out.push('', 'Targets (Tollgate identified, keep-alive GETs at 50 connections):');
  targets.forEach((t, i) => {
    out.push(`  ${i + 1}. ${t.name}: ${r(t.ratio)} — ${t.verdict}${t.why ? ` (${t.why})` : ''}`);
  });
  if (rec.failures.length > 0) {
    out.push('', 'Not measured or with errors:');
    for (const f of rec.failures) out.push(`  round ${f.round} ${f.phase} (${f.contender}): ${f.message}`);
  }
  const elapsedS = (performance.now() - t0) / 1000;
  out.push('', `took ${elapsedS.toFixed(0)} s; results in ${path.relative(REPO, RESULTS_FILE)}`);
  process.stdout.write(out.join('\n') + '\n');

  const figuresJson: Record<string, Record<string, Record<string, { median: number; min: number; max: number; samples: { round: number; value: number }[] }>>> = {};
  for (const [phase, byContender] of rec.samples) {
    for (const [contender, byFigure] of byContender) {
      for (const [k, xs] of byFigure) {
        const vs = xs.map((x) => x.value);
        ((figuresJson[phase] ??= {})[contender] ??= {})[k] = { median: median(vs), min: Math.min(...vs), max: Math.max(...vs), samples: xs };
      }
    }
  }
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(
    RESULTS_FILE,
    JSON.stringify(
      {
        startedAt: started.toISOString(),
        elapsedS,
        machine,
        settings,
        contenders: [...entries.map((e) => ({ label: e.label, description: e.c.description, ran: true })), ...unavailable.map((u) => ({ label: u.label, ran: false, reason: u.reason }))],
        serving: Object.fromEntries(serving),
        memory: Object.fromEntries(memory),
        figures: figuresJson,
        scaling,
        targets,
        accessLogs,
        interference: rec.interference,
        failures: rec.failures,
      },
      null,
      2,
    ) + '\n',
  );
  const failed = rec.failures.some((f) => !f.kept) || accessLogs.some((a) => !a.ok) || [...serving.values()].some((s) => !s.ok);
  return failed ? 1 : 0;
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
