/**
 * profile: where Tollgate's CPU goes under one bench load, from V8's sampling profiler.
 *
 *   node --import tsx bench/profile.ts [--scenario keepalive|newconn|connect|bulk] [--seconds N] [--identified]
 *                                      [--before keepalive,newconn] [--gc]
 *
 * It starts the dist build with `--cpu-prof` on the proxy core, drives one load from the load
 * core, stops Tollgate with SIGTERM (the profile is written at exit), and prints the top functions
 * by self time, by inclusive time, and self time grouped by where the code lives, with the
 * process's CPU and minor page faults from /proc. V8 counts time outside JavaScript in the event
 * loop (read syscalls, the page faults of fresh read buffers) as idle, so compare the busy share
 * with the process CPU before trusting the split. The raw profile
 * is kept as bench/results/tollgate-<scenario>.cpuprofile (open it in Chrome DevTools).
 *
 * `--before` runs other loads first, unmeasured, as `npm run bench` does before its CONNECT phase
 * (what ran before can change how the next load collects garbage). `--gc` also runs Tollgate with
 * V8's `--trace-gc-nvp` and sums the collections of the load's last `--seconds`: scavenges, what
 * each promoted to the old generation, and full collections. Objects that outlive a young
 * collection for no reason of ours (a tunnel of a millisecond promoted) show up there first.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isUnavailable, smallUrl, startOrigin, startTollgate, type Origin } from './contenders.js';
import { runBulk, runConnects, runGets } from './load.js';
import { Children, cpuMicros, minorFaults, type HostPort } from './proc.js';

/** CpuProfile is the part of V8's .cpuprofile format used here. */
interface CpuProfile {
  readonly nodes: readonly { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Window keeps the samples taken between fromMs and toMs after the profile started (the load). */
export interface Window {
  readonly fromMs: number;
  readonly toMs: number;
}

type Scenario = 'keepalive' | 'newconn' | 'connect' | 'bulk';
const SCENARIOS: readonly Scenario[] = ['keepalive', 'newconn', 'connect', 'bulk'];

/** place says where a frame's code lives: Tollgate's own, a package, Node's internals, or V8. */
function place(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const own = /\/dist\/(src\/.*)$/.exec(url);
  return own ? `tollgate ${own[1]!}` : url;
}

function label(f: { functionName: string; url: string; lineNumber: number }): string {
  const where = f.url === '' ? '' : ` ${f.url.replace(/^file:\/\/.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
  return `${f.functionName || '(anonymous)'}${where}`;
}

/**
 * summarise turns a profile into self, inclusive and per-place tables. Only samples inside the
 * window count, and shares are of busy samples: idle is reported once and left out of the rest.
 */
export function summarise(p: CpuProfile, top: number, window: Window): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const hits = new Map<number, number>();
  let t = p.startTime;
  let inWindow = 0;
  let idle = 0;
  let busyUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    const ms = (t - p.startTime) / 1000;
    if (ms < window.fromMs || ms > window.toMs) continue;
    inWindow++;
    const id = p.samples[i]!;
    if (idleIds.has(id)) {
      idle++;
      continue;
    }
    busyUs += dt;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  const totalSamples = Math.max(1, inWindow - idle);
  const msPerSample = busyUs / 1000 / totalSamples;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const places = new Map<string, number>();
  // Inclusive time counts a function once per sample even when it recurses.
  const walk = (id: number, onStack: Map<string, number>): number => {
    const n = byId.get(id)!;
    const key = label(n.callFrame);
    onStack.set(key, (onStack.get(key) ?? 0) + 1);
    let total = hits.get(id) ?? 0;
    for (const c of n.children ?? []) total += walk(c, onStack);
    const depth = onStack.get(key)! - 1;
    if (depth === 0) onStack.delete(key);
    else onStack.set(key, depth);
    if (depth === 0) incl.set(key, (incl.get(key) ?? 0) + total);
    const own = hits.get(id) ?? 0;
    self.set(key, (self.get(key) ?? 0) + own);
    const where = place(n.callFrame.url, n.callFrame.functionName);
    places.set(where, (places.get(where) ?? 0) + own);
    return total;
  };
  walk(p.nodes[0]!.id, new Map());
  const table = (title: string, m: Map<string, number>, skipRoot: boolean) => {
    const rows = [...m.entries()].filter(([k, v]) => v > 0 && !(skipRoot && /^\((root|program)\)/.test(k))).sort((a, b) => b[1] - a[1]).slice(0, top);
    return [title, ...rows.map(([k, v]) => `  ${((100 * v) / totalSamples).toFixed(1).padStart(5)}%  ${(v * msPerSample).toFixed(0).padStart(6)} ms  ${k}`)].join('\n');
  };
  const head = `${inWindow} samples in the load window, ${((100 * idle) / Math.max(1, inWindow)).toFixed(1)}% idle; shares below are of busy samples`;
  return [head, '', table('Self time by function:', self, false), '', table('Inclusive time by function:', incl, true), '', table('Self time by where the code lives:', places, false)].join('\n');
}

/** GcSummary is V8's collections over a window, from `--trace-gc-nvp` lines. */
export interface GcSummary {
  readonly scavenges: number;
  readonly scavengePauseMs: number;
  readonly promotedKiB: number;
  readonly fullCollections: number;
  readonly fullPauseMs: number;
}

/**
 * summariseGc sums the `--trace-gc-nvp` lines of the last `windowMs` before the last line but
 * `tailMs` (the shutdown): per scavenge the mean pause and bytes promoted, and the full collections.
 */
export function summariseGc(trace: string, windowMs: number, tailMs = 300): GcSummary | null {
  const lines: { t: number; kv: Map<string, string> }[] = [];
  for (const line of trace.split('\n')) {
    const m = /\s(\d+) ms: (pause=.*)$/.exec(line);
    if (m) lines.push({ t: Number(m[1]), kv: new Map(m[2]!.split(' ').map((p) => p.split('=') as [string, string])) });
  }
  if (lines.length === 0) return null;
  const end = lines[lines.length - 1]!.t - tailMs;
  const win = lines.filter((l) => l.t > end - windowMs && l.t <= end);
  const num = (l: { kv: Map<string, string> }, k: string) => Number(l.kv.get(k) ?? 0);
  const s = win.filter((l) => l.kv.get('gc') === 's');
  const mc = win.filter((l) => l.kv.get('gc') === 'mc');
  const mean = (xs: typeof win, f: (l: (typeof win)[number]) => number) => (xs.length === 0 ? 0 : xs.reduce((a, l) => a + f(l), 0) / xs.length);
  return {
    scavenges: s.length,
    scavengePauseMs: mean(s, (l) => num(l, 'pause')),
    promotedKiB: mean(s, (l) => num(l, 'promoted')) / 1024,
    fullCollections: mc.length,
    fullPauseMs: mean(mc, (l) => num(l, 'pause')),
  };
}

/** runScenario drives one scenario's load at proxy for `seconds`; it says what was done. */
async function runScenario(children: Children, scenario: Scenario, proxy: HostPort, origin: Origin, seconds: number): Promise<{ ops: number; text: string }> {
  if (scenario === 'keepalive' || scenario === 'newconn') {
    const r = await runGets(children, { connectTo: proxy, url: smallUrl(origin), viaProxy: true, newConnections: scenario === 'newconn', connections: 50, durationS: seconds });
    return { ops: r.ok, text: `${r.ok} requests, ${r.rps.toFixed(0)} req/s` };
  }
  if (scenario === 'connect') {
    const r = await runConnects(children, proxy, origin.tcp, 32, seconds * 1000);
    return { ops: r.ok, text: `${r.ok} tunnels` };
  }
  const r = await runBulk(children, proxy, origin.tcp, 1 << 30, seconds * 10_000);
  return { ops: 0, text: `${r.bytes} bytes in ${r.elapsedMs.toFixed(0)} ms, ${(r.bytes / 1e6 / (r.elapsedMs / 1000)).toFixed(0)} MB/s${r.error ? ` (${r.error})` : ''}` };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { scenario: { type: 'string' }, seconds: { type: 'string' }, top: { type: 'string' }, identified: { type: 'boolean' }, before: { type: 'string' }, gc: { type: 'boolean' } },
  });
  const scenario = (values.scenario ?? 'keepalive') as Scenario;
  if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}`);
  const seconds = Number(values.seconds ?? 8);
  if (!(seconds > 0 && seconds <= 60)) throw new Error('--seconds must be 1..60');
  const before = (values.before ?? '').split(',').filter((b) => b !== '') as Scenario[];
  for (const b of before) if (!SCENARIOS.includes(b)) throw new Error(`--before takes scenarios (${SCENARIOS.join(', ')}), comma-separated`);
  const children = new Children(true);
  const profDir = children.tempDir('profile');
  const origin = await startOrigin(children);
  try {
    const spawnedAt = performance.now();
    const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', profDir, ...(values.gc === true ? ['--trace-gc-nvp'] : [])];
    const tg = await startTollgate(children, origin, { accessLog: true, identified: values.identified === true, nodeArgs });
    if (isUnavailable(tg)) throw new Error(tg.reason);
    for (const b of before) {
      const r = await runScenario(children, b, tg.proxy!, origin, 5);
      process.stderr.write(`before: ${b}, ${r.text}\n`);
    }
    const before0 = cpuMicros(tg.pid!);
    const faultsBefore = minorFaults(tg.pid!);
    const fromMs = performance.now() - spawnedAt;
    const r = await runScenario(children, scenario, tg.proxy!, origin, seconds);
    let done = r.text + (r.ops > 0 ? `, ${((cpuMicros(tg.pid!) - before0) / r.ops).toFixed(1)} µs CPU each` : '');
    const toMs = performance.now() - spawnedAt;
    const cpuS = (cpuMicros(tg.pid!) - before0) / 1e6;
    done += `; process CPU ${cpuS.toFixed(2)} s over ${((toMs - fromMs) / 1000).toFixed(2)} s, ${minorFaults(tg.pid!) - faultsBefore} minor page faults`;
    await tg.stop();
    if (values.gc === true) {
      const g = summariseGc(tg.output(), seconds * 1000);
      done +=
        g === null
          ? '\nGC: no --trace-gc-nvp lines seen'
          : `\nGC over the load's last ${seconds} s: ${g.scavenges} scavenges (mean pause ${g.scavengePauseMs.toFixed(2)} ms, ${g.promotedKiB.toFixed(0)} KiB promoted each), ${g.fullCollections} full collections (mean pause ${g.fullPauseMs.toFixed(2)} ms)`;
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('no .cpuprofile written (did Tollgate exit cleanly on SIGTERM?)');
    const keep = path.join(import.meta.dirname, 'results', `tollgate-${scenario}.cpuprofile`);
    mkdirSync(path.dirname(keep), { recursive: true });
    copyFileSync(path.join(profDir, file), keep);
    const prof = JSON.parse(readFileSync(keep, 'utf8')) as CpuProfile;
    process.stdout.write(`Tollgate under ${scenario} load: ${done}\nprofile: ${path.relative(process.cwd(), keep)}\n\n${summarise(prof, Number(values.top ?? 25), { fromMs, toMs })}\n`);
    return 0;
  } finally {
    await origin.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`profile: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
