/**
 * inspect: TLS inspection through the whole proxy. `npm run bench:inspect [-- --quick] [--rounds N] [--ca rsa2048|p256] [--no-build]`
 *
 *   core 1: this process (client) --CONNECT--> core 0: Tollgate (dist build) --verified TLS--> core 1: tls-origin.ts
 *
 * Tollgate runs as `node dist/src/cli.js start` with a generated config: an open location (no
 * sign-in) over 127.0.0.0/8 with inspection on, a CA made here (RSA 2048 unless --ca p256: what
 * `tollgate ca init` makes), the origin's CA trusted as `upstreamCa` for *.inspect.bench, and
 * plain.tunnel.bench on doNotInspect. Each round runs, in a rotated order within each group:
 *
 *   handshakes   CONNECT + full TLS 1.3 handshake + close, `concurrency` at a time:
 *                  new host    hNNNN.inspect.bench, a name never seen before (Tollgate mints a leaf)
 *                  cached      cached.inspect.bench every time (the leaf is in Tollgate's cache)
 *                  plain       plain.tunnel.bench, not inspected: the origin's handshake, spliced
 *   keep-alive   `connections` connections sending GET /small (1 KiB) back to back, inspected and
 *                through a plain tunnel (where the client does TLS with the origin itself)
 *   bulk         one connection, GET /bulk/N and POST /sink of N bytes, inspected and plain
 *
 * Tollgate's CPU comes from /proc (its threads included: leaves are signed in the thread pool)
 * just before and after each load, so setting up connections for a keep-alive or bulk run is not
 * counted. Each measurement waits for a quiet machine and is redone once if other work disturbed it
 * (noise.ts). Every handshake must verify; every answer is checked. After Tollgate has stopped,
 * its access log must show every request sent inside an inspected tunnel as `decrypted: true`,
 * every inspected tunnel, and every plain tunnel left alone.
 *
 * Progress goes to stderr; the report to stdout and bench/results/inspect-latest.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSecureContext, type SecureContext } from 'node:tls';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { createCa, writeCa } from '../src/tls/ca.js';
import { BASE_OPTIONS, BenchError, ensureBuild, progress, runBase } from './build.js';
import { closeTls, download, handshakes, HttpConn, KeepAlivePool, openTls, SMALL_BYTES, upload, type Route } from './inspect-client.js';
import { isDisturbed, NOISE_LIMIT_PCT, NoiseMeter, type Noise } from './noise.js';
import { Children, coreTimes, cpuMicros, freePort, LOAD_CORE, PROXY_CORE, sleep, waitForPort, type Child, type HostPort } from './proc.js';

const REPO = path.resolve(import.meta.dirname, '..');
const RESULTS_FILE = path.join(import.meta.dirname, 'results', 'inspect-latest.json');
const WATCHDOG_MS = 12 * 60_000;
const MiB = 1 << 20;
const OP_TIMEOUT_MS = 10_000;

/** TLS inspection's targets: Tollgate CPU per inspected handshake (CONNECT + handshake + close), in ms. */
const TARGET_NEW_MS = 5;
const TARGET_CACHED_MS = 1.5;

/** Names the client asks for; all resolve to 127.0.0.1 through the config's `hosts`. */
const DOMAIN = 'inspect.bench';
const CACHED_HOST = `cached.${DOMAIN}`;
const WWW_HOST = `www.${DOMAIN}`;
const PLAIN_HOST = 'plain.tunnel.bench';
const newHost = (i: number) => `h${String(i).padStart(4, '0')}.${DOMAIN}`;

/** Settings are the knobs of one run; they are written into the JSON with the results. */
interface Settings {
  readonly rounds: number;
  readonly handshakes: { readonly n: number; readonly concurrency: number };
  readonly keepAlive: { readonly connections: number; readonly seconds: number };
  readonly bulkBytes: number;
  readonly caKey: 'rsa2048' | 'p256';
  readonly quietWaitMs: number;
  readonly quietBudgetMs: number;
  readonly retries: number;
  readonly build: boolean;
}

function settingsFromArgs(argv: string[]): Settings {
  const { values } = parseArgs({ args: argv, options: { ...BASE_OPTIONS, ca: { type: 'string' } } });
  const { quick, base } = runBase(values);
  const caKey = values.ca ?? 'rsa2048';
  if (caKey !== 'rsa2048' && caKey !== 'p256') throw new BenchError('--ca must be rsa2048 or p256');
  return {
    ...base,
    handshakes: { n: quick ? 100 : 400, concurrency: 8 },
    keepAlive: { connections: 32, seconds: quick ? 2 : 5 },
    bulkBytes: (quick ? 32 : 100) * MiB,
    caKey,
  };
}

/** Tally is what the client did through Tollgate, to hold against its access log. */
interface Tally {
  inspectedTunnels: number;
  plainTunnels: number;
  /** Requests sent inside inspected tunnels. */
  decrypted: { n: number };
}

/** Rig is what a phase needs: the settings, Tollgate's process, and the routes through Tollgate to the origin. */
interface Rig {
  readonly settings: Settings;
  readonly tollgate: Child;
  readonly inspected: (host: string) => Route;
  readonly plain: Route;
  readonly tally: Tally;
  /** The next never-seen host's number. */
  nextHost: number;
}

/** Load is what one load's window looked like: Tollgate's CPU, both cores' busy share, wall time. */
interface Load<T> {
  readonly result: T;
  readonly cpuUs: number;
  readonly wallMs: number;
  readonly proxyCorePct: number;
  readonly loadCorePct: number;
}

async function charged<T>(rig: Rig, load: () => Promise<T>): Promise<Load<T>> {
  const [c0, p0, l0, t0] = [cpuMicros(rig.tollgate.pid), coreTimes(PROXY_CORE).busyUs, coreTimes(LOAD_CORE).busyUs, performance.now()];
  const result = await load();
  const wallMs = performance.now() - t0;
  const pct = (busyUs: number) => busyUs / 10 / wallMs;
  return { result, cpuUs: cpuMicros(rig.tollgate.pid) - c0, wallMs, proxyCorePct: pct(coreTimes(PROXY_CORE).busyUs - p0), loadCorePct: pct(coreTimes(LOAD_CORE).busyUs - l0) };
}

/** Outcome is one phase's figures from one measurement, and whether anything failed in it. */
interface Outcome {
  readonly figures: Record<string, number>;
  readonly errors: number;
  readonly firstError: string | null;
}

/** Phase is one kind of load; a warm-up run is shorter and its figures are not kept. */
interface Phase {
  readonly key: string;
  readonly title: string;
  readonly run: (rig: Rig, warmUp: boolean) => Promise<Outcome>;
}

/** handshakePhase: n connections, each along a route(rig) of its own, each CONNECT + verified handshake + close. */
function handshakePhase(key: string, title: string, route: (rig: Rig) => Route, inspected: boolean): Phase {
  return {
    key,
    title,
    async run(rig, warmUp) {
      const n = warmUp ? 40 : rig.settings.handshakes.n;
      if (inspected) rig.tally.inspectedTunnels += n;
      else rig.tally.plainTunnels += n;
      const { result: r, cpuUs, wallMs, proxyCorePct } = await charged(rig, () => handshakes(() => route(rig), n, rig.settings.handshakes.concurrency, OP_TIMEOUT_MS));
      return { figures: { cpuMs: cpuUs / 1000 / n, rate: r.ok / (wallMs / 1000), p50Ms: r.p50Ms, proxyCorePct }, errors: r.errors, firstError: r.firstError };
    },
  };
}

/** keepAlivePhase: the pool's connections are opened first (not counted), then run for the phase's seconds. */
function keepAlivePhase(key: string, title: string, inspected: boolean): Phase {
  return {
    key,
    title,
    async run(rig, warmUp) {
      const s = rig.settings.keepAlive;
      const route = inspected ? rig.inspected(WWW_HOST) : rig.plain;
      const sent = inspected ? rig.tally.decrypted : { n: 0 };
      const conns = warmUp ? 8 : s.connections;
      if (inspected) rig.tally.inspectedTunnels += conns;
      else rig.tally.plainTunnels += conns;
      const pool = await KeepAlivePool.open(route, conns, '/small', SMALL_BYTES, OP_TIMEOUT_MS, sent);
      try {
        const { result: r, cpuUs, wallMs, proxyCorePct, loadCorePct } = await charged(rig, () => pool.run(warmUp ? 500 : s.seconds * 1000));
        sent.n += r.sent;
        return { figures: { rps: r.ok / (wallMs / 1000), cpuUs: cpuUs / r.ok, p50Ms: r.p50Ms, p99Ms: r.p99Ms, proxyCorePct, loadCorePct }, errors: r.errors, firstError: r.firstError };
      } finally {
        await pool.close(OP_TIMEOUT_MS);
      }
    },
  };
}

/** bulkPhase: one connection is opened first (not counted), then moves the bytes one way. */
function bulkPhase(key: string, title: string, inspected: boolean, direction: 'down' | 'up'): Phase {
  return {
    key,
    title,
    async run(rig, warmUp) {
      const route = inspected ? rig.inspected(WWW_HOST) : rig.plain;
      const bytes = warmUp ? 8 * MiB : rig.settings.bulkBytes;
      if (inspected) rig.tally.inspectedTunnels++;
      else rig.tally.plainTunnels++;
      const conn = new HttpConn(await openTls(route, OP_TIMEOUT_MS));
      try {
        if (inspected) rig.tally.decrypted.n++;
        const move = direction === 'down' ? download : upload;
        const { result: r, cpuUs, proxyCorePct, loadCorePct } = await charged(rig, () => move(conn, route.authority, bytes));
        return { figures: { MBps: r.bytes / 1e6 / (r.elapsedMs / 1000), cpuMsPerGiB: cpuUs / 1000 / (r.bytes / (1 << 30)), proxyCorePct, loadCorePct }, errors: 0, firstError: null };
      } finally {
        await conn.close(OP_TIMEOUT_MS);
      }
    },
  };
}

/** GROUPS are the phases of a round; each group's order is rotated from round to round. */
const GROUPS: readonly (readonly Phase[])[] = [
  [
    handshakePhase('hs-new', 'inspected, new host (mints a leaf)', (rig) => rig.inspected(newHost(rig.nextHost++)), true),
    handshakePhase('hs-cached', 'inspected, cached host', (rig) => rig.inspected(CACHED_HOST), true),
    handshakePhase('hs-plain', 'plain tunnel (the origin does TLS)', (rig) => rig.plain, false),
  ],
  [keepAlivePhase('ka-inspected', 'inspected', true), keepAlivePhase('ka-plain', 'plain tunnel', false)],
  [bulkPhase('down-inspected', 'download, inspected', true, 'down'), bulkPhase('down-plain', 'download, plain tunnel', false, 'down')],
  [bulkPhase('up-inspected', 'upload, inspected', true, 'up'), bulkPhase('up-plain', 'upload, plain tunnel', false, 'up')],
];

/** Measured is every measurement kept: per phase, per figure, one sample a round. */
interface Measured {
  readonly samples: Map<string, Map<string, number[]>>;
  readonly interference: { round: number; phase: string; otherPct: number; stealPct: number; attempts: number; disturbed: boolean }[];
  readonly failures: { round: number; phase: string; message: string }[];
}

function add(rec: Measured, phase: string, figures: Record<string, number>): void {
  const byFigure = rec.samples.get(phase) ?? new Map<string, number[]>();
  rec.samples.set(phase, byFigure);
  for (const [k, v] of Object.entries(figures)) byFigure.set(k, [...(byFigure.get(k) ?? []), v]);
}

/** measure waits for a quiet machine, runs one phase, and keeps it, or redoes it once if it was disturbed. */
async function measure(rig: Rig, noise: NoiseMeter, phase: Phase, round: number, rec: Measured, budget: { quietMs: number; retries: number }): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (budget.quietMs > 0) {
      const w = await noise.waitForQuiet(Math.min(rig.settings.quietWaitMs, budget.quietMs));
      budget.quietMs -= w.waitedMs;
      if (!w.quiet) progress(`  machine still busy after ${(w.waitedMs / 1000).toFixed(1)} s; measuring anyway`);
    }
    const snap = noise.snapshot();
    let out: Outcome;
    try {
      out = await phase.run(rig, false);
    } catch (err) {
      rec.failures.push({ round, phase: phase.key, message: (err as Error).message });
      progress(`  failed: ${(err as Error).message}`);
      return;
    }
    const n: Noise = noise.since(snap);
    if (isDisturbed(n) && attempt === 1 && budget.retries > 0) {
      budget.retries--;
      progress(`  disturbed (${n.otherPct.toFixed(0)}% of a core went to other work): measuring again`);
      continue;
    }
    rec.interference.push({ round, phase: phase.key, otherPct: n.otherPct, stealPct: n.stealPct, attempts: attempt, disturbed: isDisturbed(n) });
    if (out.errors > 0) {
      rec.failures.push({ round, phase: phase.key, message: `${out.errors} failed (first: ${out.firstError}); figures of this round not kept` });
      progress(`  ${out.errors} failed: ${out.firstError}`);
      return;
    }
    add(rec, phase.key, out.figures);
    return;
  }
}

/** startOrigin runs tls-origin.ts on the load core and waits for its ready line. */
async function startOrigin(children: Children): Promise<{ child: Child; port: number; caFile: string }> {
  const dir = children.tempDir('tls-origin');
  const child = children.spawn('tls-origin', process.execPath, ['--import', 'tsx', path.join(REPO, 'bench', 'tls-origin.ts'), '--dir', dir], { core: LOAD_CORE, cwd: REPO });
  for (let i = 0; i < 400; i++) {
    const line = child.stdout().split('\n').find((l) => l.includes('"ready"'));
    if (line !== undefined) {
      const ready = JSON.parse(line) as { port: number; caFile: string };
      return { child, port: ready.port, caFile: ready.caFile };
    }
    if (child.proc.exitCode !== null) break;
    await sleep(50);
  }
  throw new BenchError(`tls-origin did not start: ${child.stderrTail().trim()}`);
}

/**
 * startTollgate writes the config (as JSON, which YAML reads) and the CA, and runs the dist build
 * pinned to the proxy core. `names` never-seen hosts are in `hosts` beside the fixed ones.
 */
async function startTollgate(children: Children, settings: Settings, origin: { port: number; caFile: string }, names: number): Promise<{ child: Child; proxy: HostPort; caPem: string; accessLog: string }> {
  const dir = children.tempDir('tollgate-inspect');
  const ca = createCa({ keyType: settings.caKey, commonName: 'Tollgate bench CA' });
  const caPaths = { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key') };
  await writeCa(caPaths, ca.certPem, ca.keyPem);
  const proxy: HostPort = { host: '127.0.0.1', port: await freePort() };
  const accessLog = path.join(dir, 'access.log');
  const hosts: Record<string, string> = { [CACHED_HOST]: '127.0.0.1', [WWW_HOST]: '127.0.0.1', [PLAIN_HOST]: '127.0.0.1' };
  for (let i = 0; i < names; i++) hosts[newHost(i)] = '127.0.0.1';
  const config = {
    listeners: { proxy: `${proxy.host}:${proxy.port}`, control: `127.0.0.1:${await freePort()}` },
    store: { type: 'embedded', path: path.join(dir, 'store') },
    nodeName: 'bench',
    locations: [{ name: 'lab', ips: ['127.0.0.0/8', '::1'], inspection: 'on' }],
    connectPorts: [origin.port],
    hosts,
    inspection: { caCert: caPaths.cert, caKey: caPaths.key, doNotInspect: [PLAIN_HOST], hosts: [{ match: [`*.${DOMAIN}`], upstreamCa: origin.caFile }] },
    logging: { level: 'warn', accessLog },
  };
  const configPath = path.join(dir, 'tollgate.yaml');
  writeFileSync(configPath, JSON.stringify(config, null, 1) + '\n');
  const child = children.spawn('tollgate', process.execPath, [path.join(REPO, 'dist', 'src', 'cli.js'), 'start', '--config', configPath], { core: PROXY_CORE, cwd: dir });
  await waitForPort(proxy, child, 30_000);
  return { child, proxy, caPem: ca.certPem, accessLog };
}

/** LogCheck is what Tollgate's access log held, against what the client did. */
interface LogCheck {
  readonly decrypted: number;
  readonly decryptedNot200: number;
  readonly decryptedPlainHost: number;
  readonly inspectedTunnels: number;
  readonly plainTunnels: number;
  readonly plainInspected: number;
  readonly other: number;
  readonly expected: { readonly decrypted: number; readonly inspectedTunnels: number; readonly plainTunnels: number };
  readonly ok: boolean;
}

function checkAccessLog(file: string, tally: Tally): LogCheck {
  const c = { decrypted: 0, decryptedNot200: 0, decryptedPlainHost: 0, inspectedTunnels: 0, plainTunnels: 0, plainInspected: 0, other: 0 };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as { protocol?: string; decrypted?: boolean; host?: string; sni?: string; status?: number; reason?: string };
    if (e.decrypted === true) {
      c.decrypted++;
      if (e.status !== 200) c.decryptedNot200++;
      if (e.host === PLAIN_HOST || e.sni === PLAIN_HOST) c.decryptedPlainHost++;
    } else if (e.protocol === 'TUNNEL' && e.host === PLAIN_HOST) {
      c.plainTunnels++;
      if (e.reason?.startsWith('inspected') === true) c.plainInspected++;
    } else if (e.protocol === 'TUNNEL' && e.host?.endsWith(`.${DOMAIN}`) === true && e.reason?.startsWith('inspected') === true) c.inspectedTunnels++;
    else c.other++;
  }
  const expected = { decrypted: tally.decrypted.n, inspectedTunnels: tally.inspectedTunnels, plainTunnels: tally.plainTunnels };
  const ok =
    c.decrypted === expected.decrypted && c.inspectedTunnels === expected.inspectedTunnels && c.plainTunnels === expected.plainTunnels &&
    c.decryptedNot200 === 0 && c.decryptedPlainHost === 0 && c.plainInspected === 0 && c.other === 0;
  return { ...c, expected, ok };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Figure formats one figure of one phase as `median [min–max]`, or `—` when no round kept it. */
function figure(rec: Measured, phase: string, key: string, digits: number): string {
  const xs = rec.samples.get(phase)?.get(key) ?? [];
  if (xs.length === 0) return '—';
  const f = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return xs.length === 1 ? f(xs[0]!) : `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

/** table lays out a header and rows in columns as wide as their widest cell, indented by two spaces. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('   ')}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Target is one of TLS inspection's targets, judged on the median of the rounds. */
interface Target {
  readonly name: string;
  readonly limitMs: number;
  readonly valueMs: number | null;
  readonly rounds: readonly number[];
  readonly verdict: 'MET' | 'NOT MET' | 'NOT EVALUATED';
  readonly why?: string;
}

function judge(rec: Measured, phase: string, name: string, limitMs: number, log: LogCheck): Target {
  const xs = rec.samples.get(phase)?.get('cpuMs') ?? [];
  const failed = rec.failures.filter((f) => f.phase === phase).length;
  if (xs.length === 0) return { name, limitMs, valueMs: null, rounds: xs, verdict: 'NOT EVALUATED', why: 'no round measured' };
  if (failed > 0) return { name, limitMs, valueMs: median(xs), rounds: xs, verdict: 'NOT EVALUATED', why: `${failed} round(s) failed` };
  if (!log.ok) return { name, limitMs, valueMs: median(xs), rounds: xs, verdict: 'NOT EVALUATED', why: 'the access log does not show the handshakes inspected as sent' };
  const disturbed = rec.interference.filter((i) => i.phase === phase && i.disturbed).length;
  const verdict = median(xs) <= limitMs ? 'MET' : 'NOT MET';
  return { name, limitMs, valueMs: median(xs), rounds: xs, verdict, ...(disturbed > 0 ? { why: `${disturbed} of ${xs.length} round(s) measured while other work took over ${NOISE_LIMIT_PCT}% of a core: treat with care` } : {}) };
}

function report(rec: Measured, settings: Settings, log: LogCheck, targets: readonly Target[], head: string[]): string {
  const [hsPhases, kaPhases, downPhases, upPhases] = GROUPS as [Phase[], Phase[], Phase[], Phase[]];
  const f = (p: Phase, key: string, digits: number, unit = '') => `${figure(rec, p.key, key, digits)}${unit}`;
  const out = [...head, ''];
  out.push(`Handshakes: CONNECT + full TLS handshake + close, ${settings.handshakes.n} per round, ${settings.handshakes.concurrency} at a time`);
  out.push(
    ...table(
      ['', 'Tollgate CPU per connection', 'connections/s', 'CONNECT to verified, p50', 'core 0 busy'],
      hsPhases.map((p) => [p.title, f(p, 'cpuMs', 2, ' ms'), f(p, 'rate', 0), f(p, 'p50Ms', 2, ' ms'), f(p, 'proxyCorePct', 0, '%')]),
    ),
  );
  out.push('', `Keep-alive GET /small (${SMALL_BYTES} B body), ${settings.keepAlive.connections} connections × ${settings.keepAlive.seconds} s, one request in flight on each`);
  out.push(
    ...table(
      ['', 'req/s', 'Tollgate CPU per request', 'p50', 'p99', 'core 0 busy', 'core 1 busy'],
      kaPhases.map((p) => [p.title, f(p, 'rps', 0), f(p, 'cpuUs', 1, ' µs'), f(p, 'p50Ms', 2, ' ms'), f(p, 'p99Ms', 2, ' ms'), f(p, 'proxyCorePct', 0, '%'), f(p, 'loadCorePct', 0, '%')]),
    ),
  );
  out.push('', `Bulk: one connection, ${settings.bulkBytes / MiB} MiB each way`);
  out.push(
    ...table(
      ['', 'MB/s', 'Tollgate CPU per GiB', 'core 0 busy', 'core 1 busy'],
      [...downPhases, ...upPhases].map((p) => [p.title, f(p, 'MBps', 0), f(p, 'cpuMsPerGiB', 0, ' ms'), f(p, 'proxyCorePct', 0, '%'), f(p, 'loadCorePct', 0, '%')]),
    ),
  );
  const mark = (a: number, b: number) => (a === b ? 'ok' : 'MISMATCH');
  out.push(
    '',
    'Access log (counted after Tollgate stopped; warm-up included):',
    ...table(
      ['', 'lines', 'sent / opened', ''],
      [
        ['requests, decrypted: true', String(log.decrypted), String(log.expected.decrypted), `${mark(log.decrypted, log.expected.decrypted)}; not 200: ${log.decryptedNot200}; for ${PLAIN_HOST}: ${log.decryptedPlainHost}`],
        [`inspected tunnels (*.${DOMAIN})`, String(log.inspectedTunnels), String(log.expected.inspectedTunnels), mark(log.inspectedTunnels, log.expected.inspectedTunnels)],
        [`plain tunnels (${PLAIN_HOST})`, String(log.plainTunnels), String(log.expected.plainTunnels), `${mark(log.plainTunnels, log.expected.plainTunnels)}; inspected: ${log.plainInspected}`],
        ['other lines', String(log.other), '', ''],
      ],
    ),
    `  => ${log.ok ? 'every request inside an inspected tunnel was decrypted and logged; plain tunnels were not inspected' : 'NOT as expected: the figures do not show what they claim'}`,
  );
  const seen = rec.interference;
  const worst = seen.reduce((m, i) => Math.max(m, i.otherPct), 0);
  const redone = seen.filter((i) => i.attempts > 1).length;
  const stayed = seen.filter((i) => i.disturbed);
  out.push('', `Interference: other work up to ${worst.toFixed(0)}% of a core during a measurement; ${redone} redone; ${stayed.length} stayed disturbed${stayed.length > 0 ? `: ${stayed.map((i) => `round ${i.round} ${i.phase} (${i.otherPct.toFixed(0)}%)`).join(', ')}` : ''}`);
  out.push('', 'Targets (Tollgate CPU, median of the rounds):');
  targets.forEach((t, i) => {
    const v = t.valueMs === null ? '—' : `${t.valueMs.toFixed(2)} ms (rounds: ${t.rounds.map((x) => x.toFixed(2)).join(', ')})`;
    out.push(`  ${i + 1}. ${t.name} <= ${t.limitMs} ms: ${v} — ${t.verdict}${t.why ? ` (${t.why})` : ''}`);
  });
  const ratio = (a: string, b: string, key: string) => {
    const x = rec.samples.get(a)?.get(key) ?? [];
    const y = rec.samples.get(b)?.get(key) ?? [];
    return x.length === 0 || y.length === 0 ? '—' : `${(median(x) / median(y)).toFixed(2)}×`;
  };
  out.push(
    `  3. keep-alive inside inspected connections (no target set; reported): ${figure(rec, 'ka-inspected', 'rps', 0)} req/s at ${figure(rec, 'ka-inspected', 'cpuUs', 1)} µs of Tollgate CPU per request; ` +
      `plain tunnel ${figure(rec, 'ka-plain', 'rps', 0)} req/s at ${figure(rec, 'ka-plain', 'cpuUs', 1)} µs; inspected ÷ plain: rate ${ratio('ka-inspected', 'ka-plain', 'rps')}, CPU ${ratio('ka-inspected', 'ka-plain', 'cpuUs')}`,
    `  4. bulk through an inspected connection (no target set; reported): download ${figure(rec, 'down-inspected', 'MBps', 0)} MB/s vs ${figure(rec, 'down-plain', 'MBps', 0)} plain (${ratio('down-inspected', 'down-plain', 'MBps')}); ` +
      `upload ${figure(rec, 'up-inspected', 'MBps', 0)} MB/s vs ${figure(rec, 'up-plain', 'MBps', 0)} plain (${ratio('up-inspected', 'up-plain', 'MBps')})`,
  );
  if (rec.failures.length > 0) {
    out.push('', 'Not measured:');
    for (const f of rec.failures) out.push(`  round ${f.round} ${f.phase}: ${f.message}`);
  }
  return out.join('\n');
}

/** Peer is what a client learns of the TLS peer behind a route: the protocol and who the certificate is from. */
interface Peer {
  readonly protocol: string;
  readonly subject: string;
  readonly issuer: string;
}

/** peer opens one connection along the route and reads its peer certificate (the header shows who answered). */
async function peer(route: Route): Promise<Peer> {
  const sock = await openTls(route, OP_TIMEOUT_MS);
  const cert = sock.getPeerCertificate();
  const p = { protocol: sock.getProtocol() ?? '?', subject: cert.subjectaltname ?? '?', issuer: String(cert.issuer?.CN ?? '?') };
  await closeTls(sock, OP_TIMEOUT_MS);
  return p;
}

function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const settings = settingsFromArgs(process.argv.slice(2));
  const children = new Children(os.availableParallelism() >= 2);
  // Read before this process is pinned: availableParallelism counts the cores it may run on.
  const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), kernel: os.release(), node: process.version, openssl: process.versions.openssl, pinned: children.pinning, loadAverageAtStart: os.loadavg() };
  // The client runs here: on the load core, beside the origin, like bench/tls.ts.
  if (children.pinning) execFileSync('taskset', ['-cp', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' });
  const watchdog = setTimeout(() => {
    children.killAllNow();
    process.stderr.write(`bench: still running after ${WATCHDOG_MS / 1000} s; stopped everything\n`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  const build = ensureBuild(settings.build, progress);

  const origin = await startOrigin(children);
  // Every attempt at a new-host measurement (a redo is a second one) needs names never seen.
  const names = 40 + 2 * settings.rounds * settings.handshakes.n;
  const tg = await startTollgate(children, settings, origin, names);
  const trust = (pem: string): SecureContext => createSecureContext({ ca: pem });
  const ours = trust(tg.caPem);
  const originTrust = trust(readFileSync(origin.caFile, 'utf8'));
  const rig: Rig = {
    settings,
    tollgate: tg.child,
    inspected: (host) => ({ proxy: tg.proxy, authority: `${host}:${origin.port}`, servername: host, trust: ours }),
    plain: { proxy: tg.proxy, authority: `${PLAIN_HOST}:${origin.port}`, servername: PLAIN_HOST, trust: originTrust },
    tally: { inspectedTunnels: 0, plainTunnels: 0, decrypted: { n: 0 } },
    nextHost: 0,
  };
  const noise = new NoiseMeter([PROXY_CORE, LOAD_CORE], () => [tg.child.pid, origin.child.pid]);
  const rec: Measured = { samples: new Map(), interference: [], failures: [] };
  let peers: { inspected: Peer; plain: Peer };
  try {
    rig.tally.inspectedTunnels++;
    rig.tally.plainTunnels++;
    peers = { inspected: await peer(rig.inspected(WWW_HOST)), plain: await peer(rig.plain) };
    progress('warming up');
    for (const group of GROUPS) for (const p of group) {
      const w = await p.run(rig, true);
      if (w.errors > 0) throw new BenchError(`warm-up ${p.key}: ${w.errors} failed (first: ${w.firstError})`);
    }
    const budget = { quietMs: settings.quietBudgetMs, retries: settings.retries };
    for (let round = 1; round <= settings.rounds; round++) {
      for (const group of GROUPS) {
        for (const phase of rotate(group, round - 1)) {
          progress(`round ${round}/${settings.rounds}: ${phase.key}`);
          await measure(rig, noise, phase, round, rec, budget);
        }
      }
    }
  } finally {
    await children.stop(tg.child, 15_000);
    await children.stop(origin.child);
  }
  const log = checkAccessLog(tg.accessLog, rig.tally);

  const targets = [
    judge(rec, 'hs-new', 'new-host inspected handshake (CONNECT + handshake + close)', TARGET_NEW_MS, log),
    judge(rec, 'hs-cached', 'cached-host inspected handshake', TARGET_CACHED_MS, log),
  ];
  const elapsedS = (performance.now() - t0) / 1000;
  const head = [
    `TLS inspection through the whole proxy — ${started.toISOString()} — ${settings.rounds} round(s), median [min–max] over rounds`,
    `machine: ${machine.cpu}, ${machine.cores} cores, kernel ${machine.kernel}, node ${machine.node} (OpenSSL ${machine.openssl}), load average at start ${machine.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')}`,
    `placement: Tollgate on core ${PROXY_CORE}; the client (this process) and the https origin on core ${LOAD_CORE}${children.pinning ? '' : ' (NOT pinned: taskset missing or fewer than 2 cores)'}`,
    `Tollgate: node dist/src/cli.js start (${build}); open location 127.0.0.0/8, inspection on; CA ${settings.caKey}, leaf ecdsa-p256 (the config default); access log to a file`,
    `origin: bench/tls-origin.ts, its own P-256 CA (Tollgate's upstreamCa for *.${DOMAIN}; the client's only trust through the plain tunnel to ${PLAIN_HOST})`,
    `client saw: inspected ${peers.inspected.protocol}, certificate for ${peers.inspected.subject} issued by "${peers.inspected.issuer}"; plain tunnel ${peers.plain.protocol}, certificate for ${peers.plain.subject} issued by "${peers.plain.issuer}"`,
  ];
  process.stdout.write(report(rec, settings, log, targets, head) + `\n\ntook ${elapsedS.toFixed(0)} s; results in ${path.relative(REPO, RESULTS_FILE)}\n`);

  const figures: Record<string, Record<string, { median: number; min: number; max: number; samples: number[] }>> = {};
  for (const [phase, byFigure] of rec.samples) {
    figures[phase] = {};
    for (const [k, xs] of byFigure) figures[phase][k] = { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs };
  }
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(
    RESULTS_FILE,
    JSON.stringify({ startedAt: started.toISOString(), elapsedS, machine, build, peers, settings, figures, targets, accessLog: log, interference: rec.interference, failures: rec.failures }, null, 2) + '\n',
  );
  return rec.failures.length > 0 || !log.ok ? 1 : 0;
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
