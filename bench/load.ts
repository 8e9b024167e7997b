/**
 * load: the load generators, each run as a child pinned to the load core (a wrk run may be placed
 * otherwise).
 *
 *   wrk (bench/wrk/get.lua):  small GETs, keep-alive or one request per connection
 *   bench/loadgen.ts:         CONNECT setup rate and bulk bytes through a tunnel
 *
 * Every run is bounded: wrk by `-d` and `--timeout`, loadgen by its job's deadline, and both by a
 * kill timer a little past that.
 */
import path from 'node:path';
import { Children, runToEnd, LOAD_CORE, type HostPort } from './proc.js';
import { smallUrl, type Origin } from './contenders.js';
import type { BulkJob, BulkResult, ConnectJob, ConnectResult } from './loadgen.js';

const BENCH_DIR = import.meta.dirname;
const GET_LUA = path.join(BENCH_DIR, 'wrk', 'get.lua');
const LOADGEN = path.join(BENCH_DIR, 'loadgen.ts');

/** GetRun is one wrk run: `connections` clients for `durationS` seconds. */
export interface GetRun {
  /** Where wrk connects: the proxy, or the origin for direct. */
  readonly connectTo: HostPort;
  /** The origin URL requested (absolute-form when going through a proxy). */
  readonly url: string;
  readonly viaProxy: boolean;
  /** One request per connection (`Connection: close`) instead of keep-alive. */
  readonly newConnections: boolean;
  readonly connections: number;
  readonly durationS: number;
  /** The core wrk is pinned to (default LOAD_CORE); null runs it unpinned. */
  readonly core?: number | null;
}

/** GetResult is what wrk's done() reported; `ok` counts 2xx/3xx responses. */
export interface GetResult {
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly durationS: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  statusErrors: number;
  timeouts: number;
  p50Us: number;
  p99Us: number;
}

/** runGets runs wrk once and parses its WRKJSON line; it throws when wrk fails or prints none. */
export async function runGets(children: Children, run: GetRun): Promise<GetResult> {
  const args = [
    '-t1',
    `-c${run.connections}`,
    `-d${run.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    GET_LUA,
    `http://${run.connectTo.host}:${run.connectTo.port}/`,
    '--',
    run.url,
    run.viaProxy ? 'absolute' : 'origin',
    run.newConnections ? 'close' : 'keep',
  ];
  const r = await runToEnd(children, 'wrk', 'wrk', args, { core: run.core === undefined ? LOAD_CORE : run.core }, (run.durationS + 15) * 1000);
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (r.timedOut || line === undefined) throw new Error(`wrk failed (exit ${r.exit}${r.timedOut ? ', killed after its deadline' : ''}): ${(r.stderr || r.stdout).trim().slice(-500)}`);
  const s = JSON.parse(line.slice('WRKJSON '.length)) as WrkSummary;
  const ok = s.requests - s.statusErrors;
  const durationS = s.durationUs / 1e6;
  return {
    requests: s.requests,
    ok,
    errors: s.statusErrors + s.connectErrors + s.readErrors + s.writeErrors + s.timeouts,
    durationS,
    rps: ok / durationS,
    p50Ms: s.p50Us / 1000,
    p99Ms: s.p99Us / 1000,
  };
}

async function runLoadgen<R>(children: Children, job: ConnectJob | BulkJob, timeoutMs: number): Promise<R> {
  const r = await runToEnd(children, 'loadgen', process.execPath, ['--import', 'tsx', LOADGEN, JSON.stringify(job)], { core: LOAD_CORE, cwd: path.dirname(BENCH_DIR) }, timeoutMs);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.timedOut || line === undefined) throw new Error(`loadgen ${job.kind} failed (exit ${r.exit}${r.timedOut ? ', killed after its deadline' : ''}): ${r.stderr.trim().slice(-500)}`);
  return JSON.parse(line) as R;
}

/** runConnects opens tunnels through `proxy` to `target` for durationMs with `concurrency` loops. */
export function runConnects(children: Children, proxy: HostPort, target: HostPort, concurrency: number, durationMs: number): Promise<ConnectResult> {
  const job: ConnectJob = { kind: 'connect', proxy, target: `${target.host}:${target.port}`, concurrency, durationMs, maxOps: 1_000_000, opTimeoutMs: 5000 };
  return runLoadgen<ConnectResult>(children, job, durationMs + 20_000);
}

/** runBulk pulls `bytes` from the origin's TCP source (or pushes them to its sink), through `proxy`'s tunnel when given. */
export function runBulk(children: Children, proxy: HostPort | null, origin: HostPort, bytes: number, timeoutMs: number, direction: BulkJob['direction'] = 'down'): Promise<BulkResult> {
  const job: BulkJob = { kind: 'bulk', direction, proxy, origin, bytes, timeoutMs };
  return runLoadgen<BulkResult>(children, job, timeoutMs + 10_000);
}

/**
 * warmUp drives one proxy briefly, not recorded, so JIT, pools and allocator arenas reach steady
 * state: keep-alive GETs for `seconds` (when wrk is there), then half a second of tunnels. It
 * returns how many responses and tunnels were answered.
 */
export async function warmUp(children: Children, proxy: HostPort, origin: Origin, seconds: number, withWrk = true): Promise<number> {
  let answered = 0;
  if (withWrk) answered += (await runGets(children, { connectTo: proxy, url: smallUrl(origin), viaProxy: true, newConnections: false, connections: 50, durationS: seconds })).ok;
  answered += (await runConnects(children, proxy, origin.tcp, 8, 500)).ok;
  return answered;
}
