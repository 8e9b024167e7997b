/**
 * report: the figures the bench collects, the table it prints, the targets it checks, and the
 * JSON it writes. Pure: no processes, no clock; run.ts feeds it samples.
 *
 * Each figure is sampled once per round per contender; the table shows the median (or the sum or
 * max, as the figure says) with the range over rounds in brackets, and n when a round is missing.
 * Targets also give the ratio within each round: contenders of one round ran minutes apart at
 * most, so drift the guest cannot see (a busy host does not always show as steal) mostly cancels.
 */
import { CONTENDERS, type ContenderName } from './contenders.js';
import { NOISE_LIMIT_PCT } from './noise.js';

/** MetricKey names one figure. */
export type MetricKey =
  | 'ka.rps'
  | 'ka.p50Ms'
  | 'ka.p99Ms'
  | 'ka.cpuUs'
  | 'ka.errors'
  | 'ka2.rps'
  | 'ka2.p99Ms'
  | 'ka2.cpuUs'
  | 'nc.rps'
  | 'nc.p50Ms'
  | 'nc.cpuUs'
  | 'nc.errors'
  | 'ct.rate'
  | 'ct.p50Ms'
  | 'ct.cpuUs'
  | 'ct.errors'
  | 'bulk.MBps'
  | 'bulk.cpuMsPerGiB'
  | 'bulk.errors'
  | 'up.MBps'
  | 'up.cpuMsPerGiB'
  | 'up.errors'
  | 'rss.idleMiB'
  | 'rss.loadMiB'
  | 'rss.afterMiB';

/** MetricDef says how a figure is labelled and summarised over rounds. */
export interface MetricDef {
  readonly key: MetricKey;
  readonly label: string;
  readonly unit: string;
  readonly digits: number;
  readonly agg: 'median' | 'sum' | 'max';
}

/** METRICS is every figure, in table order. */
export const METRICS: readonly MetricDef[] = [
  { key: 'ka.rps', label: 'keep-alive GET rate', unit: 'req/s', digits: 0, agg: 'median' },
  { key: 'ka.p50Ms', label: 'keep-alive GET latency p50', unit: 'ms', digits: 2, agg: 'median' },
  { key: 'ka.p99Ms', label: 'keep-alive GET latency p99', unit: 'ms', digits: 2, agg: 'median' },
  { key: 'ka.cpuUs', label: 'proxy CPU per keep-alive GET', unit: 'µs', digits: 1, agg: 'median' },
  { key: 'ka.errors', label: 'keep-alive GET errors (all rounds)', unit: 'count', digits: 0, agg: 'sum' },
  { key: 'ka2.rps', label: 'keep-alive GET rate, run again at once', unit: 'req/s', digits: 0, agg: 'median' },
  { key: 'ka2.p99Ms', label: 'keep-alive GET latency p99, run again at once', unit: 'ms', digits: 2, agg: 'median' },
  { key: 'ka2.cpuUs', label: 'proxy CPU per keep-alive GET, run again at once', unit: 'µs', digits: 1, agg: 'median' },
  { key: 'nc.rps', label: 'new-connection GET rate', unit: 'req/s', digits: 0, agg: 'median' },
  { key: 'nc.p50Ms', label: 'new-connection GET latency p50', unit: 'ms', digits: 2, agg: 'median' },
  { key: 'nc.cpuUs', label: 'proxy CPU per new-connection GET', unit: 'µs', digits: 1, agg: 'median' },
  { key: 'nc.errors', label: 'new-connection GET errors (all rounds)', unit: 'count', digits: 0, agg: 'sum' },
  { key: 'ct.rate', label: 'CONNECT setup rate (open+200+close)', unit: 'tunnels/s', digits: 0, agg: 'median' },
  { key: 'ct.p50Ms', label: 'CONNECT to 200 latency p50', unit: 'ms', digits: 2, agg: 'median' },
  { key: 'ct.cpuUs', label: 'proxy CPU per tunnel', unit: 'µs', digits: 1, agg: 'median' },
  { key: 'ct.errors', label: 'CONNECT errors (all rounds)', unit: 'count', digits: 0, agg: 'sum' },
  { key: 'bulk.MBps', label: 'bulk download, one stream', unit: 'MB/s', digits: 0, agg: 'median' },
  { key: 'bulk.cpuMsPerGiB', label: 'proxy CPU per GiB relayed', unit: 'ms', digits: 0, agg: 'median' },
  { key: 'bulk.errors', label: 'bulk download failures (all rounds)', unit: 'count', digits: 0, agg: 'sum' },
  { key: 'up.MBps', label: 'bulk upload, one stream', unit: 'MB/s', digits: 0, agg: 'median' },
  { key: 'up.cpuMsPerGiB', label: 'proxy CPU per GiB uploaded', unit: 'ms', digits: 0, agg: 'median' },
  { key: 'up.errors', label: 'bulk upload failures (all rounds)', unit: 'count', digits: 0, agg: 'sum' },
  { key: 'rss.idleMiB', label: 'proxy RSS idle, 1 s after each round\'s start', unit: 'MiB', digits: 1, agg: 'median' },
  { key: 'rss.loadMiB', label: 'proxy RSS under load (peak of each round)', unit: 'MiB', digits: 1, agg: 'max' },
  { key: 'rss.afterMiB', label: 'proxy RSS idle, 1.5 s after each round\'s load', unit: 'MiB', digits: 1, agg: 'median' },
];

const DEF = new Map(METRICS.map((m) => [m.key, m]));

/** Summary is one figure over its rounds. */
export interface Summary {
  readonly value: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** medianOf is the middle of sorted values (the mean of the two middle ones for an even count). */
function medianOf(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** median of values in any order; NaN when there are none. */
export function median(values: readonly number[]): number {
  return values.length === 0 ? NaN : medianOf([...values].sort((a, b) => a - b));
}

/** summarise reduces a figure's samples by its aggregation; null when there are none. */
export function summarise(key: MetricKey, values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const agg = DEF.get(key)!.agg;
  const value = agg === 'sum' ? sorted.reduce((a, b) => a + b, 0) : agg === 'max' ? sorted[sorted.length - 1]! : medianOf(sorted);
  return { value, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

/** ContenderStatus says whether a contender ran, and why not. */
export type ContenderStatus = { readonly ran: true; readonly description: string } | { readonly ran: false; readonly reason: string };

/**
 * Interference is how disturbed one recorded measurement was: CPU that went to work other than the
 * bench's, and steal, in percent of one core's wall time; `attempts` is 2 when it was redone.
 */
export interface Interference {
  readonly round: number;
  readonly phase: string;
  readonly contender: ContenderName;
  readonly otherPct: number;
  readonly stealPct: number;
  readonly attempts: number;
}

/** AccessLogTally is one contender's access log counted after it stopped, and the requests and tunnels it answered. */
export interface AccessLogTally {
  readonly lines: number;
  readonly withLogin: number;
  readonly answered: number;
  readonly user: string;
}

/** Results collects samples as the bench runs. */
export class Results {
  readonly #samples = new Map<ContenderName, Map<MetricKey, { round: number; value: number }[]>>();
  readonly status = new Map<ContenderName, ContenderStatus>();
  /** Figures a whole contender could not produce, and why (e.g. wrk missing). */
  readonly skipped: { contender: ContenderName | 'all'; what: string; reason: string }[] = [];
  /** Single measurements that failed; their figures are missing from that round, never filled in. */
  readonly failures: { round: number; contender: ContenderName; phase: string; message: string }[] = [];
  /** How disturbed each recorded measurement was. */
  readonly interference: Interference[] = [];
  /** What each logging contender's access log held at the end, against what it answered. */
  readonly accessLogs = new Map<ContenderName, AccessLogTally>();

  /** add records one sample of a round (0: outside the rounds); non-finite values are dropped, never invented. */
  add(contender: ContenderName, key: MetricKey, value: number, round: number): void {
    if (!Number.isFinite(value)) return;
    let m = this.#samples.get(contender);
    if (!m) this.#samples.set(contender, (m = new Map()));
    let v = m.get(key);
    if (!v) m.set(key, (v = []));
    v.push({ round, value });
  }

  values(contender: ContenderName, key: MetricKey): readonly number[] {
    return (this.#samples.get(contender)?.get(key) ?? []).map((s) => s.value);
  }

  rounds(contender: ContenderName, key: MetricKey): readonly number[] {
    return (this.#samples.get(contender)?.get(key) ?? []).map((s) => s.round);
  }

  summary(contender: ContenderName, key: MetricKey): Summary | null {
    return summarise(key, this.values(contender, key));
  }

  /** ratios divides a's sample by b's in each round both have, in round order (drift cancels within a round). */
  ratios(a: ContenderName, b: ContenderName, key: MetricKey): number[] {
    const bs = new Map((this.#samples.get(b)?.get(key) ?? []).map((s) => [s.round, s.value]));
    return (this.#samples.get(a)?.get(key) ?? []).filter((s) => bs.has(s.round) && bs.get(s.round)! !== 0).map((s) => s.value / bs.get(s.round)!);
  }
}

/** Target is one pass/fail comparison; met is null when it could not be evaluated. */
export interface Target {
  readonly id: number;
  readonly text: string;
  readonly met: boolean | null;
  readonly detail: string;
}

function fmt(v: number, digits: number): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function perRound(ratios: readonly number[]): string {
  return ratios.length > 1 ? `; per round ${ratios.map((r) => `${fmt(r, 2)}×`).join(', ')}` : '';
}

function missing(results: Results, c: ContenderName): string {
  const s = results.status.get(c);
  return s && !s.ran ? `${c} did not run: ${s.reason}` : `${c} has no samples`;
}

/** TargetDef is one comparison: Tollgate (identified) against another contender's figure × factor, or a fixed limit. */
interface TargetDef {
  readonly text: string;
  readonly key: MetricKey;
  readonly op: '>=' | '<=';
  /** Compared with `versus`'s figure × factor, or with `limit` when versus is null. */
  readonly versus: ContenderName | null;
  readonly factor: number;
  readonly limit?: number;
}

/** TARGETS are the data plane's targets; "Tollgate" is the identified contender (IP surrogate, LRU hit). */
const TARGETS: readonly TargetDef[] = [
  { text: 'keep-alive GET rate ≥ 1.0× squid', key: 'ka.rps', op: '>=', versus: 'squid', factor: 1 },
  { text: 'proxy CPU per keep-alive request ≤ squid', key: 'ka.cpuUs', op: '<=', versus: 'squid', factor: 1 },
  { text: 'new-connection GET rate ≥ 1.0× squid', key: 'nc.rps', op: '>=', versus: 'squid', factor: 1 },
  { text: 'CPU per new-connection GET ≤ 1.2× squid', key: 'nc.cpuUs', op: '<=', versus: 'squid', factor: 1.2 },
  { text: 'CONNECT setup rate ≥ 1.0× squid', key: 'ct.rate', op: '>=', versus: 'squid', factor: 1 },
  { text: 'CPU per CONNECT tunnel ≤ 1.2× squid', key: 'ct.cpuUs', op: '<=', versus: 'squid', factor: 1.2 },
  { text: 'bulk download through a tunnel ≥ 1.0× squid', key: 'bulk.MBps', op: '>=', versus: 'squid', factor: 1 },
  { text: 'bulk download through a tunnel ≥ 0.5× direct', key: 'bulk.MBps', op: '>=', versus: 'direct', factor: 0.5 },
  { text: 'bulk upload through a tunnel ≥ 1.0× squid', key: 'up.MBps', op: '>=', versus: 'squid', factor: 1 },
  { text: 'bulk upload through a tunnel ≥ 0.5× direct', key: 'up.MBps', op: '>=', versus: 'direct', factor: 0.5 },
  { text: 'keep-alive p99 latency at 50 connections ≤ 1.5× squid', key: 'ka.p99Ms', op: '<=', versus: 'squid', factor: 1.5 },
  { text: 'RSS idle ≤ 70 MiB', key: 'rss.idleMiB', op: '<=', versus: null, factor: 1, limit: 70 },
  { text: 'RSS under load ≤ 100 MiB', key: 'rss.loadMiB', op: '<=', versus: null, factor: 1, limit: 100 },
];

/** SUBJECT is the contender the targets judge; the open-location Tollgate is shown beside it. */
const SUBJECT: ContenderName = 'tollgate-id';

/** evaluateTargets checks every target on the summarised figures. */
export function evaluateTargets(results: Results): Target[] {
  return TARGETS.map((t, i) => {
    const id = i + 1;
    const def = DEF.get(t.key)!;
    const mine = results.summary(SUBJECT, t.key);
    const other = t.versus === null ? null : results.summary(t.versus, t.key);
    if (mine === null) return { id, text: t.text, met: null, detail: `not evaluated: ${missing(results, SUBJECT)}` };
    if (t.versus !== null && other === null) return { id, text: t.text, met: null, detail: `not evaluated: ${missing(results, t.versus)}` };
    const bound = t.versus === null ? t.limit! : other!.value * t.factor;
    const met = t.op === '>=' ? mine.value >= bound : mine.value <= bound;
    const open = results.summary('tollgate', t.key);
    const openText = open === null ? '' : `; open location ${fmt(open.value, def.digits)}`;
    const u = def.unit === 'count' ? '' : ` ${def.unit}`;
    const detail =
      t.versus === null
        ? `Tollgate ${fmt(mine.value, def.digits)}${u} (limit ${fmt(bound, def.digits)}${u})${openText}`
        : `Tollgate ${fmt(mine.value, def.digits)}${u} vs ${t.versus} ${fmt(other!.value, def.digits)}${u} ` +
          `(${fmt(mine.value / other!.value, 2)}×${perRound(results.ratios(SUBJECT, t.versus, t.key))}; needs ${t.op === '>=' ? '≥' : '≤'} ${fmt(bound, def.digits)})${openText}`;
    return { id, text: t.text, met, detail };
  });
}

/** renderAccessLogs shows that the identified contender's requests were really identified, from its own access log. */
export function renderAccessLogs(results: Results): string {
  if (results.accessLogs.size === 0) return 'access logs: not counted (--access-log off)';
  const lines = ['access logs (counted after each proxy stopped; answered = responses and tunnels the load generators saw, warm-up included):'];
  for (const [name, t] of results.accessLogs) {
    const pct = t.lines === 0 ? 0 : (100 * t.withLogin) / t.lines;
    lines.push(`  ${name.padEnd(11)} ${fmt(t.lines, 0)} lines for ${fmt(t.answered, 0)} answered; ${fmt(t.withLogin, 0)} (${fmt(pct, 1)}%) name a user (${t.user} expected only in tollgate-id)`);
  }
  return lines.join('\n');
}

function cell(s: Summary | null, def: MetricDef, rounds: number): string {
  if (s === null) return '—';
  let text = fmt(s.value, def.digits);
  if (def.agg !== 'sum' && s.n > 1 && s.min !== s.max) text += ` [${fmt(s.min, def.digits)}–${fmt(s.max, def.digits)}]`;
  if (def.agg !== 'sum' && s.n !== rounds && s.n > 1) text += ` n=${s.n}`;
  return text;
}

/** renderTable prints every figure per contender: median [min–max] over rounds. */
export function renderTable(results: Results, rounds: number): string {
  const head = ['figure', ...CONTENDERS];
  const rows: string[][] = [];
  for (const def of METRICS) {
    const cells = CONTENDERS.map((c) => cell(results.summary(c, def.key), def, rounds));
    if (cells.every((x) => x === '—')) continue;
    rows.push([`${def.label} (${def.unit})`, ...cells]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** renderInterference summarises the other work seen during the recorded measurements and lists the disturbed ones. */
export function renderInterference(results: Results): string {
  const xs = results.interference;
  if (xs.length === 0) return 'interference: nothing measured';
  const sorted = xs.map((x) => x.otherPct).sort((a, b) => a - b);
  const redone = xs.filter((x) => x.attempts > 1).length;
  const lines = [
    `interference (CPU not used by the bench, % of one core): median ${fmt(sorted[sorted.length >> 1]!, 1)}%, max ${fmt(sorted[sorted.length - 1]!, 1)}%; ` +
      `max steal ${fmt(Math.max(...xs.map((x) => x.stealPct)), 1)}%; ${redone} of ${xs.length} measurements redone`,
  ];
  for (const x of xs) {
    if (x.otherPct > NOISE_LIMIT_PCT || x.stealPct > NOISE_LIMIT_PCT) {
      lines.push(`  still disturbed: round ${x.round} ${x.phase} (${x.contender}): ${fmt(x.otherPct, 1)}% other work, ${fmt(x.stealPct, 1)}% steal`);
    }
  }
  return lines.join('\n');
}

/** renderTargets prints each target as met / not met / not evaluated with its numbers. */
export function renderTargets(targets: readonly Target[]): string {
  return targets.map((t) => `(${t.id}) ${t.text}: ${t.met === null ? 'NOT EVALUATED' : t.met ? 'MET' : 'NOT MET'} — ${t.detail}`).join('\n');
}

/** toJson is the machine-readable form of a run, written to bench/results/latest.json. */
export function toJson(results: Results, targets: readonly Target[], meta: Record<string, unknown>): unknown {
  const contenders: Record<string, unknown> = {};
  for (const c of CONTENDERS) {
    const metrics: Record<string, unknown> = {};
    for (const def of METRICS) {
      const values = results.values(c, def.key);
      if (values.length === 0) continue;
      metrics[def.key] = { label: def.label, unit: def.unit, aggregate: def.agg, values, rounds: results.rounds(c, def.key), summary: results.summary(c, def.key) };
    }
    contenders[c] = { status: results.status.get(c) ?? { ran: false, reason: 'not started' }, metrics };
  }
  return { ...meta, skipped: results.skipped, failures: results.failures, interference: results.interference, accessLogs: Object.fromEntries(results.accessLogs), contenders, targets };
}
