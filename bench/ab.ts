/**
 * ab: `npm run bench:ab -- --base DIR` — did a change make the data plane cheaper? This checkout's
 * build against another checkout's build (the base: main, say), the same loads as `npm run bench`,
 * with the signed-in user of `tollgate-id`.
 *
 *   core 1: wrk / loadgen  ->  core 0: this build | the base build (one at a time)  ->  core 1: origin
 *
 * The machine this runs on is a shared VM whose speed drifts by a third from one minute to the
 * next, and two instances of one build can differ by 10-15% for their whole life. So each round
 * starts both builds afresh, warms them up, and runs every phase on both back to back (which starts
 * and goes first alternates by round). The figure that counts is the ratio this/base within a round, where
 * drift has had seconds, not minutes, to act; the report gives its median over rounds and every
 * round's value, beside each build's own medians.
 *
 * Flags: --base DIR (a checkout with `npm ci` and `npm run build` done), --rounds N (default 5),
 * --phases ka,nc,ct,down,up (keep-alive GETs, new-connection GETs, CONNECT setup, 512 MiB down and
 * up through a tunnel; default ka,nc,ct), --quick,
 * --no-build. Progress goes to stderr, the report to stdout.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BASE_OPTIONS, BenchError, ensureBuild, progress, runBase } from './build.js';
import { BENCH_USER, isUnavailable, smallUrl, startOrigin, startTollgate, type Contender, type Origin } from './contenders.js';
import { runBulk, runConnects, runGets, warmUp } from './load.js';
import { median } from './report.js';
import { Children, cpuMicros } from './proc.js';

type PhaseName = 'ka' | 'nc' | 'ct' | 'down' | 'up';
const PHASE_NAMES: Record<PhaseName, string> = { ka: 'keep-alive GETs', nc: 'new-connection GETs', ct: 'CONNECT setup', down: 'bulk download', up: 'bulk upload' };
/** BULK_BYTES is one bulk stream through a tunnel, as in `npm run bench`. */
const BULK_BYTES = 512 * 1024 * 1024;
type Build = 'this' | 'base';

interface Settings {
  readonly base: string;
  readonly rounds: number;
  readonly phases: readonly PhaseName[];
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly build: boolean;
}

function settingsFromArgs(argv: string[]): Settings {
  const { values } = parseArgs({ args: argv, options: { ...BASE_OPTIONS, base: { type: 'string' }, phases: { type: 'string' } } });
  const { quick, base: runOpts } = runBase({ ...values, rounds: values.rounds ?? (values.quick === true ? '1' : '5') });
  if (values.base === undefined) throw new BenchError('--base DIR is required: a checkout to compare with, built (npm ci && npm run build)');
  const base = path.resolve(values.base);
  for (const need of ['dist/src/cli.js', 'node_modules']) {
    if (!existsSync(path.join(base, need))) throw new BenchError(`${path.join(base, need)} is missing: run npm ci && npm run build in the base checkout`);
  }
  const phases = (values.phases ?? 'ka,nc,ct').split(',').map((p) => p.trim());
  for (const p of phases) if (!(p in PHASE_NAMES)) throw new BenchError(`--phases: ${p} is not one of ka, nc, ct, down, up`);
  return { base, rounds: runOpts.rounds, phases: phases as PhaseName[], seconds: quick ? 2 : 4, warmupSeconds: quick ? 1 : 2, build: runOpts.build };
}

/** One phase on one instance: its rate and the proxy's CPU per operation (per MiB for bulk). */
interface Sample {
  readonly rate: number;
  readonly cpuUs: number;
  readonly errors: number;
}

async function measure(children: Children, origin: Origin, c: Contender, phase: PhaseName, seconds: number): Promise<Sample> {
  const proxy = c.proxy!;
  const before = cpuMicros(c.pid!);
  if (phase === 'down' || phase === 'up') {
    const r = await runBulk(children, proxy, origin.tcp, BULK_BYTES, 60_000, phase);
    if (r.error !== null) return { rate: NaN, cpuUs: NaN, errors: 1 };
    return { rate: r.bytes / 1e6 / (r.elapsedMs / 1000), cpuUs: (cpuMicros(c.pid!) - before) / (r.bytes / (1 << 20)), errors: 0 };
  }
  if (phase === 'ct') {
    const r = await runConnects(children, proxy, origin.tcp, 32, seconds * 1000);
    return { rate: r.ok / (r.elapsedMs / 1000), cpuUs: (cpuMicros(c.pid!) - before) / r.ok, errors: r.errors };
  }
  const r = await runGets(children, { connectTo: proxy, url: smallUrl(origin), viaProxy: true, newConnections: phase === 'nc', connections: 50, durationS: seconds });
  return { rate: r.rps, cpuUs: (cpuMicros(c.pid!) - before) / r.ok, errors: r.errors };
}

async function main(): Promise<void> {
  const settings = settingsFromArgs(process.argv.slice(2));
  const built = ensureBuild(settings.build, progress);
  const children = new Children(true);
  const origin = await startOrigin(children);
  const samples = new Map<string, Sample[]>();
  const key = (phase: PhaseName, build: Build) => `${phase} ${build}`;
  const logs: Record<Build, { lines: number; named: number }> = { this: { lines: 0, named: 0 }, base: { lines: 0, named: 0 } };
  for (let round = 1; round <= settings.rounds; round++) {
    // Which build starts and runs first alternates by round, so neither order favours one build.
    const builds: readonly Build[] = round % 2 === 1 ? ['this', 'base'] : ['base', 'this'];
    const order: { build: Build; c: Contender }[] = [];
    for (const build of builds) {
      const c = await startTollgate(children, origin, { accessLog: true, identified: true, ...(build === 'base' ? { cli: path.join(settings.base, 'dist', 'src', 'cli.js') } : {}) });
      if (isUnavailable(c)) throw new BenchError(`${build} build did not start: ${c.reason}`);
      order.push({ build, c });
    }
    for (const { build, c } of order) {
      progress(`round ${round}/${settings.rounds}: warming up ${build}`);
      await warmUp(children, c.proxy!, origin, settings.warmupSeconds);
    }
    for (const phase of settings.phases) {
      for (const { build, c } of order) {
        progress(`round ${round}/${settings.rounds}: ${PHASE_NAMES[phase]} — ${build}`);
        const s = await measure(children, origin, c, phase, settings.seconds);
        samples.set(key(phase, build), [...(samples.get(key(phase, build)) ?? []), s]);
      }
    }
    for (const { build, c } of order) {
      await c.stop();
      logs[build].lines += c.accessLog?.lines ?? 0;
      logs[build].named += c.accessLog?.withLogin ?? 0;
    }
  }
  await origin.stop();

  const out = [
    `Tollgate A/B — this checkout vs ${settings.base}, ${settings.rounds} round(s), fresh instances each round, ${BENCH_USER} identified (tollgate-id); ${built}`,
    'figure: median over rounds [min–max] for each build; this/base: median of the per-round ratios, then each round',
    '',
  ];
  for (const phase of settings.phases) {
    const a = samples.get(key(phase, 'this'))!;
    const b = samples.get(key(phase, 'base'))!;
    const bulk = phase === 'down' || phase === 'up';
    const unit = bulk ? 'MB/s' : phase === 'ct' ? 'tunnels/s' : 'req/s';
    for (const [label, pick, u] of [
      ['rate', (s: Sample) => s.rate, unit],
      [bulk ? 'CPU per MiB' : 'CPU per op', (s: Sample) => s.cpuUs, 'µs'],
    ] as const) {
      const ratios = a.map((s, i) => pick(s) / pick(b[i]!));
      const fmt = (xs: readonly Sample[]) => `${median(xs.map(pick)).toFixed(1)} [${Math.min(...xs.map(pick)).toFixed(1)}–${Math.max(...xs.map(pick)).toFixed(1)}] ${u}`;
      out.push(`${PHASE_NAMES[phase].padEnd(20)} ${label.padEnd(11)} this ${fmt(a).padEnd(30)} base ${fmt(b).padEnd(30)} this/base ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(3)).join(', ')})`);
    }
    const errors = [...a, ...b].reduce((n, s) => n + s.errors, 0);
    if (errors > 0) out.push(`${''.padEnd(20)} errors in this phase (both builds, all rounds): ${errors}`);
  }
  out.push('', `access logs: this ${logs.this.named} of ${logs.this.lines} lines name the user; base ${logs.base.named} of ${logs.base.lines}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(err instanceof BenchError ? `bench:ab: ${err.message}\n` : `bench:ab failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
