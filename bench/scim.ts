/**
 * scim: SCIM server benchmark. `node --import tsx bench/scim.ts [--users 100000] [--creates 5000]
 * [--lookups 5000] [--stores embedded,embedded-tmpfs,redis]`
 *
 *   core 1: this process (HTTP load, keep-alive)  ──►  core 0: bench/scim-server.ts (+ redis-server)
 *
 * For each store it starts bench/scim-server.ts as a child pinned to core 0 (`taskset -c 0`), which
 * fills the directory to --users users through the Directory API (not HTTP) and then serves the real
 * createScimHandler on 127.0.0.1:0 with the rate limit off. This process pins itself to core 1 and
 * measures over real HTTP with keep-alive:
 *   1. create: --creates POST /Users, 16 in flight → creates/s, latency, and the server's CPU per
 *      create (utime+stime from /proc/<pid>/stat before and after).
 *   2. lookup: --lookups GET /Users?filter=userName eq "<random existing user>", 8 in flight →
 *      lookups/s and p50/p95/p99; every reply must be 200 with exactly that one user.
 * Stores: `embedded` is SQLite in a temp dir under os.tmpdir() (the real disk here; every write is
 * acknowledged after an fsync of the WAL, shared by the writes that arrive together: group commit);
 * `embedded-tmpfs` is the same on /dev/shm, where fsync is free, to show
 * what the CPU alone would allow (diagnostic, not a deployment); `redis` is a throwaway
 * redis-server (persistence off, as in test/helpers/redis.ts) also pinned to core 0.
 * Prints a table and the targets, and writes bench/results/scim-latest.json.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, connect } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_TENANT, benchUser, benchUserName } from './scim-data.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STARTED = performance.now();
/** HARD_LIMIT_MS aborts the whole run (children and temp dirs are still cleaned up). */
const HARD_LIMIT_MS = 6 * 60_000;
const TARGET_CREATES_PER_S = 1_000;
const TARGET_LOOKUP_P99_MS = 5;
const ZIA_RATE = 5;
const SYNC_USERS = 3_000;

type StoreKind = 'embedded' | 'embedded-tmpfs' | 'redis';

interface Phase {
  requests: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  rate: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  serverCpuUsPerReq: number | null;
  redisCpuUsPerReq: number | null;
}

interface StoreResult {
  store: StoreKind;
  dataDir: string | null;
  fill: { users: number; ms: number; rate: number; via: string; progress: { users: number; rate: number }[] };
  create: Phase | null;
  lookup: Phase | null;
  lookup1: Phase | null;
  error?: string;
}

// ---- cleanup: everything started is tracked and removed on every exit path ----

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
function cleanupSync(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.once('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    cleanupSync();
    process.exit(130);
  });
}
const hard = setTimeout(() => {
  console.error(`scim bench: over ${HARD_LIMIT_MS / 1000}s, aborting`);
  cleanupSync();
  process.exit(2);
}, HARD_LIMIT_MS);
hard.unref();

async function stopChild(c: ChildProcess, ms = 5_000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return void children.delete(c);
  const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(t);
  children.delete(c);
}

// ---- CPU pinning and accounting ----

function haveTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
/** CORES is read before this process pins itself (after that, availableParallelism() says 1). */
const CORES = availableParallelism();
const PIN = haveTaskset() && CORES >= 2;
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** cpuUs is utime+stime of one process (all its threads), in µs. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "(comm) ": state is index 0, so utime (14) is 11 and stime (15) is 12.
  return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e6;
}

function pinned(cmd: string[], core: number): string[] {
  return PIN ? ['taskset', '-c', String(core), ...cmd] : cmd;
}

// ---- redis ----

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

async function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

async function startRedis(): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-scim-bench-redis-'));
  dirs.add(dir);
  const [cmd, ...args] = pinned(
    ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    0,
  );
  const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    if (await redisPing(port)) return { url: `redis://127.0.0.1:${port}`, child, dir };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not answer PING within 5 s');
}

// ---- the server under test ----

interface Ready {
  port: number;
  token: string;
  pid: number;
  fillMs: number;
  users: number;
}

async function startServer(
  args: string[],
  onProgress: (p: { users: number; rate: number; elapsedMs: number }) => void,
): Promise<{ child: ChildProcess; ready: Ready }> {
  const [cmd, ...rest] = pinned([process.execPath, '--import', 'tsx', join(ROOT, 'bench', 'scim-server.ts'), ...args], 0);
  const child = spawn(cmd!, rest, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server not ready within 150 s')), 150_000);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`scim-server exited (${code ?? sig}) before it was ready`));
    });
    lines.on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return void process.stderr.write(`[server] ${line}\n`);
      }
      if (msg['type'] === 'progress') onProgress(msg as unknown as { users: number; rate: number; elapsedMs: number });
      else if (msg['type'] === 'ready') {
        clearTimeout(timer);
        resolve(msg as unknown as Ready);
      } else if (msg['type'] === 'error') {
        clearTimeout(timer);
        reject(new Error(`scim-server: ${String(msg['message'])}`));
      }
    });
  });
  return { child, ready };
}

// ---- HTTP load ----

interface Res {
  status: number;
  body: string;
}

function send(agent: Agent, port: number, method: string, path: string, token: string, body?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${token}`, accept: 'application/scim+json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/scim+json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** run sends n requests from `conc` loops; check(i, res) returns null when the reply is right. */
async function runPhase(
  n: number,
  conc: number,
  make: (i: number) => Promise<Res>,
  check: (i: number, r: Res) => string | null,
  cpuPids: { server: number; redis?: number | undefined },
): Promise<Phase> {
  const lat: number[] = [];
  let errors = 0;
  const samples: string[] = [];
  let next = 0;
  const cpu0 = cpuUs(cpuPids.server);
  const rcpu0 = cpuPids.redis !== undefined ? cpuUs(cpuPids.redis) : 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const s = performance.now();
        let problem: string | null;
        try {
          problem = check(i, await make(i));
        } catch (err) {
          problem = err instanceof Error ? err.message : String(err);
        }
        lat.push(performance.now() - s);
        if (problem !== null) {
          errors++;
          if (samples.length < 5) samples.push(problem.slice(0, 300));
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuUs(cpuPids.server) - cpu0;
  const rcpu = cpuPids.redis !== undefined ? cpuUs(cpuPids.redis) - rcpu0 : null;
  lat.sort((a, b) => a - b);
  const ok = n - errors;
  return {
    requests: n,
    ok,
    errors,
    errorSamples: samples,
    seconds,
    rate: ok / seconds,
    p50: pct(lat, 50),
    p95: pct(lat, 95),
    p99: pct(lat, 99),
    max: lat[lat.length - 1] ?? NaN,
    serverCpuUsPerReq: ok > 0 ? cpu / ok : null,
    redisCpuUsPerReq: rcpu !== null && ok > 0 ? rcpu / ok : null,
  };
}

/** mulberry32: a small seeded PRNG, so every run looks up the same users. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- one store ----

interface Opts {
  users: number;
  creates: number;
  lookups: number;
  createConc: number;
  lookupConc: number;
  warmup: number;
}

async function benchStore(kind: StoreKind, o: Opts): Promise<StoreResult> {
  const result: StoreResult = {
    store: kind,
    dataDir: null,
    fill: { users: o.users, ms: 0, rate: 0, via: 'Directory.createUser in the server process (not HTTP)', progress: [] },
    create: null,
    lookup: null,
    lookup1: null,
  };
  let redis: Awaited<ReturnType<typeof startRedis>> | null = null;
  let server: ChildProcess | null = null;
  let dataDir: string | null = null;
  try {
    const args = ['--users', String(o.users)];
    if (kind === 'redis') {
      redis = await startRedis();
      args.push('--redis', redis.url);
    } else {
      const base = kind === 'embedded-tmpfs' ? '/dev/shm' : tmpdir();
      dataDir = mkdtempSync(join(base, 'tollgate-scim-bench-'));
      dirs.add(dataDir);
      result.dataDir = dataDir;
      args.push('--dir', dataDir);
    }
    console.log(`\n[${kind}] filling ${o.users.toLocaleString('en-US')} users via the Directory API${kind === 'redis' ? '' : ' (sqlite synchronous=OFF during the fill only)'}…`);
    const started = await startServer(args, (p) => {
      result.fill.progress.push({ users: p.users, rate: p.rate });
      console.log(`  ${p.users.toLocaleString('en-US').padStart(7)} users  ${String(p.rate).padStart(6)}/s  (${(p.elapsedMs / 1000).toFixed(1)} s)`);
    });
    server = started.child;
    const { port, token, pid, fillMs } = started.ready;
    if (server.pid !== pid) throw new Error(`pid mismatch: spawned ${server.pid}, server reports ${pid} (CPU would be read from the wrong process)`);
    result.fill.ms = fillMs;
    result.fill.rate = o.users / (fillMs / 1000);
    console.log(`  filled in ${(fillMs / 1000).toFixed(1)} s (${Math.round(result.fill.rate)}/s); server pid ${pid} on 127.0.0.1:${port}`);

    const base = `/${BENCH_TENANT}/scim/v2`;
    const cpuPids = { server: pid, redis: redis?.child.pid };

    // Warm-up: JIT, connections, SQLite page cache. Its users stay in the directory.
    const agentW = new Agent({ keepAlive: true, maxSockets: o.createConc });
    await runPhase(o.warmup, o.createConc, (i) => send(agentW, port, 'POST', `${base}/Users`, token, JSON.stringify(benchUser(`warm${i}@bench.example`, 900_000 + i))), () => null, cpuPids);
    await runPhase(o.warmup, o.lookupConc, (i) => send(agentW, port, 'GET', `${base}/Users?filter=${encodeURIComponent(`userName eq "${benchUserName(i)}"`)}`, token), () => null, cpuPids);
    agentW.destroy();

    // 1. creates
    const agentC = new Agent({ keepAlive: true, maxSockets: o.createConc });
    console.log(`  create: ${o.creates} POST /Users, ${o.createConc} in flight…`);
    result.create = await runPhase(
      o.creates,
      o.createConc,
      (i) => send(agentC, port, 'POST', `${base}/Users`, token, JSON.stringify(benchUser(`new${i}@bench.example`, 1_000_000 + i))),
      (_i, r) => (r.status === 201 ? null : `POST ${r.status}: ${r.body}`),
      cpuPids,
    );
    agentC.destroy();

    // 2. lookups of random pre-filled users
    const rnd = prng(42);
    const picks = Array.from({ length: o.lookups }, () => Math.floor(rnd() * o.users));
    const agentL = new Agent({ keepAlive: true, maxSockets: o.lookupConc });
    console.log(`  lookup: ${o.lookups} GET /Users?filter=userName eq, ${o.lookupConc} in flight…`);
    result.lookup = await runPhase(
      o.lookups,
      o.lookupConc,
      (i) => send(agentL, port, 'GET', `${base}/Users?filter=${encodeURIComponent(`userName eq "${benchUserName(picks[i]!)}"`)}`, token),
      (i, r) => {
        if (r.status !== 200) return `GET ${r.status}: ${r.body}`;
        const b = JSON.parse(r.body) as { totalResults?: number; Resources?: { userName?: string }[] };
        const want = benchUserName(picks[i]!);
        if (b.totalResults !== 1 || b.Resources?.[0]?.userName?.toLowerCase() !== want) return `wrong result for ${want}: ${r.body.slice(0, 200)}`;
        return null;
      },
      cpuPids,
    );
    agentL.destroy();

    // 3. the same lookups one at a time: service time without queueing behind the other 7.
    const agent1 = new Agent({ keepAlive: true, maxSockets: 1 });
    const n1 = Math.min(o.lookups, 1_000);
    console.log(`  lookup: ${n1} GET /Users?filter=userName eq, 1 in flight…`);
    result.lookup1 = await runPhase(
      n1,
      1,
      (i) => send(agent1, port, 'GET', `${base}/Users?filter=${encodeURIComponent(`userName eq "${benchUserName(picks[i]!)}"`)}`, token),
      (_i, r) => (r.status === 200 && r.body.includes('"totalResults":1') ? null : `GET ${r.status}: ${r.body.slice(0, 200)}`),
      cpuPids,
    );
    agent1.destroy();
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    console.log(`  FAILED: ${result.error}`);
  } finally {
    if (server !== null) await stopChild(server);
    if (redis !== null) {
      await stopChild(redis.child);
      rmSync(redis.dir, { recursive: true, force: true });
      dirs.delete(redis.dir);
    }
    if (dataDir !== null) {
      rmSync(dataDir, { recursive: true, force: true });
      dirs.delete(dataDir);
    }
  }
  return result;
}

// ---- report ----

const f1 = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(1));
const f2 = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(2));
const f0 = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '-' : Math.round(x).toLocaleString('en-US'));

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r, ri) => r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]!) : cell.padStart(w[c]!))).join('  ') + (ri === 0 ? '\n' + w.map((n) => '-'.repeat(n)).join('  ') : '')).join('\n');
}

function duration(s: number): string {
  return s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '100000' },
      creates: { type: 'string', default: '5000' },
      lookups: { type: 'string', default: '5000' },
      stores: { type: 'string', default: 'embedded,embedded-tmpfs,redis' },
      warmup: { type: 'string', default: '300' },
    },
  });
  const bounded = (name: string, v: string | undefined, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer in 1..${max}`);
    return n;
  };
  const o: Opts = {
    users: bounded('users', values.users, 1_000_000),
    creates: bounded('creates', values.creates, 100_000),
    lookups: bounded('lookups', values.lookups, 100_000),
    warmup: bounded('warmup', values.warmup, 10_000),
    createConc: 16,
    lookupConc: 8,
  };
  const stores = values.stores.split(',').map((s) => s.trim()) as StoreKind[];
  for (const s of stores) if (!['embedded', 'embedded-tmpfs', 'redis'].includes(s)) throw new Error(`unknown store ${s}`);

  if (PIN) execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const haveRedis = (() => {
    try {
      execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  const haveShm = existsSync('/dev/shm');
  console.log('Tollgate SCIM benchmark');
  console.log(
    `  ${cpus()[0]?.model ?? 'cpu ?'} · ${CORES} cores · node ${process.version} · ` +
      (PIN ? 'server (+redis) on core 0, load on core 1' : 'NOT pinned (no taskset or < 2 cores)'),
  );
  console.log(`  ${o.users.toLocaleString('en-US')} users · ${o.creates} creates @${o.createConc} · ${o.lookups} lookups @${o.lookupConc} · rate limit off · ${o.warmup} warm-up creates + lookups first`);

  const results: StoreResult[] = [];
  const skipped: string[] = [];
  for (const s of stores) {
    if (s === 'redis' && !haveRedis) {
      skipped.push('redis: redis-server not installed');
      continue;
    }
    if (s === 'embedded-tmpfs' && !haveShm) {
      skipped.push('embedded-tmpfs: no /dev/shm');
      continue;
    }
    results.push(await benchStore(s, o));
  }

  const rows: string[][] = [
    ['store', 'fill/s', 'creates/s', 'create p50', 'p99', 'srv CPU µs/create', 'redis µs/create', 'lookups/s', 'lookup p50', 'p95', 'p99', 'srv CPU µs/lookup', 'lookup@1 p50', 'p99', 'errors'],
  ];
  for (const r of results) {
    const c = r.create;
    const l = r.lookup;
    rows.push([
      r.store,
      f0(r.fill.rate),
      f0(c?.rate),
      c ? `${f2(c.p50)} ms` : '-',
      c ? `${f2(c.p99)} ms` : '-',
      f0(c?.serverCpuUsPerReq),
      f0(c?.redisCpuUsPerReq),
      f0(l?.rate),
      l ? `${f2(l.p50)} ms` : '-',
      l ? `${f2(l.p95)} ms` : '-',
      l ? `${f2(l.p99)} ms` : '-',
      f0(l?.serverCpuUsPerReq),
      r.lookup1 ? `${f2(r.lookup1.p50)} ms` : '-',
      r.lookup1 ? `${f2(r.lookup1.p99)} ms` : '-',
      r.error ? 'FAILED' : String((c?.errors ?? 0) + (l?.errors ?? 0) + (r.lookup1?.errors ?? 0)),
    ]);
  }
  console.log('\nResults (' + o.users.toLocaleString('en-US') + ' users present)\n');
  console.log(table(rows));
  console.log('\n  embedded: SQLite under ' + tmpdir() + ' (real disk; each create acknowledged after an fsync, one fsync per group of concurrent writes)');
  console.log('  embedded-tmpfs: same on /dev/shm (fsync costs nothing): the CPU-bound ceiling, not a deployment');
  console.log('  lookup@1: the same lookups with 1 in flight (service time, no queueing); the target is judged on the 8-in-flight p99');
  console.log('  redis: redis-server with persistence off (--save "" --appendonly no), pinned with the server to core 0');
  for (const r of results) {
    for (const p of [r.create, r.lookup, r.lookup1]) for (const e of p?.errorSamples ?? []) console.log(`  ${r.store} error: ${e}`);
    if (r.error) console.log(`  ${r.store} FAILED: ${r.error}`);
  }
  for (const s of skipped) console.log(`  skipped ${s}`);

  console.log('\nTargets');
  const targets: { store: string; target: string; met: boolean | null; value: string }[] = [];
  for (const r of results) {
    const c = r.create;
    const l = r.lookup;
    const cMet = c && c.errors === 0 ? c.rate >= TARGET_CREATES_PER_S : null;
    const lMet = l && l.errors === 0 ? l.p99 < TARGET_LOOKUP_P99_MS : null;
    const word = (m: boolean | null): string => (m === null ? 'NOT EVALUATED' : m ? 'MET' : 'NOT MET');
    const cv = c ? `${f0(c.rate)} creates/s${PIN ? ' (server on one core)' : ''}` : 'no measurement';
    const lv = l ? `p99 ${f2(l.p99)} ms` : 'no measurement';
    console.log(`  ${r.store.padEnd(15)} ≥ ${TARGET_CREATES_PER_S} creates/s on one core: ${word(cMet).padEnd(8)} ${cv}`);
    console.log(`  ${r.store.padEnd(15)} lookup p99 < ${TARGET_LOOKUP_P99_MS} ms at ${o.users / 1000}k users: ${word(lMet).padEnd(8)} ${lv}`);
    targets.push({ store: r.store, target: `>= ${TARGET_CREATES_PER_S} creates/s`, met: cMet, value: cv });
    targets.push({ store: r.store, target: `lookup p99 < ${TARGET_LOOKUP_P99_MS} ms`, met: lMet, value: lv });
  }

  const ziaS = SYNC_USERS / ZIA_RATE;
  console.log(`\nScale: a ${SYNC_USERS.toLocaleString('en-US')}-user initial sync (one POST per user)`);
  console.log(`  ZIA at ${ZIA_RATE} req/s: ${duration(ziaS)}`);
  const sync: Record<string, number> = {};
  for (const r of results) {
    if (!r.create || r.create.rate <= 0) continue;
    const s = SYNC_USERS / r.create.rate;
    sync[r.store] = s;
    console.log(`  Tollgate ${r.store}, limit off, at ${f0(r.create.rate)}/s: ${duration(s)} (${f0(ziaS / s)}× faster)`);
  }
  console.log('  (with the default limit of 5 req/s Tollgate takes as long as ZIA: the limit, not the server, sets the pace)');

  const totalS = (performance.now() - STARTED) / 1000;
  const out = {
    when: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: CORES, node: process.version, pinned: PIN, tmpdir: tmpdir() },
    options: o,
    results,
    skipped,
    targets,
    sync: { users: SYNC_USERS, ziaRate: ZIA_RATE, ziaSeconds: ziaS, tollgateSeconds: sync },
    totalSeconds: totalS,
  };
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'scim-latest.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`\nWrote bench/results/scim-latest.json · total ${totalS.toFixed(1)} s`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  })
  .finally(() => {
    cleanupSync();
  });
