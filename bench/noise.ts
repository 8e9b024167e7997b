/**
 * noise: how much of the machine's CPU went to work that is not the bench's own.
 *
 * Both cores' busy time comes from /proc/stat; the bench's own CPU is every tracked process (the
 * proxies, the origin), the bench process itself, and its reaped children (wrk, loadgen: their
 * time lands in this process's cutime/cstime once they are waited for). What is left is someone
 * else's: other tenants of the VM, a test suite running next to us. A measurement taken while that
 * share is high is retried; the quiet gate waits for it to drop before measuring at all.
 */
import { readFileSync } from 'node:fs';
import { coreTimes, cpuMicros, selfAndReapedMicros, sleep } from './proc.js';

/** NOISE_LIMIT_PCT is the other work (percent of one core) above which a measurement is disturbed. */
export const NOISE_LIMIT_PCT = 10;

/** isDisturbed tells whether other work or steal over an interval went over NOISE_LIMIT_PCT. */
export function isDisturbed(n: Noise | undefined): boolean {
  return n !== undefined && (n.otherPct > NOISE_LIMIT_PCT || n.stealPct > NOISE_LIMIT_PCT);
}

/** Snapshot is the CPU counters at one moment. */
interface Snapshot {
  readonly at: number;
  readonly busyUs: number;
  readonly stealUs: number;
  readonly oursUs: number;
}

/** Noise is the other work seen over one interval, in percent of one core's wall time. */
export interface Noise {
  readonly otherPct: number;
  readonly stealPct: number;
}

/** NoiseMeter tells the bench's CPU from everyone else's on the given cores. */
export class NoiseMeter {
  constructor(
    readonly cores: readonly number[],
    /** The pids the bench owns that outlive a measurement (proxies, origin). */
    readonly pids: () => readonly number[],
  ) {}

  snapshot(): Snapshot {
    let busyUs = 0;
    let stealUs = 0;
    for (const c of this.cores) {
      const t = coreTimes(c);
      busyUs += t.busyUs;
      stealUs += t.stealUs;
    }
    let oursUs = selfAndReapedMicros();
    for (const pid of this.pids()) oursUs += cpuMicros(pid);
    return { at: performance.now(), busyUs, stealUs, oursUs };
  }

  /** since is the other work from `from` until now. */
  since(from: Snapshot): Noise {
    const now = this.snapshot();
    const wallUs = Math.max(1, (now.at - from.at) * 1000);
    return {
      otherPct: Math.max(0, (100 * (now.busyUs - from.busyUs - (now.oursUs - from.oursUs))) / wallUs),
      stealPct: (100 * (now.stealUs - from.stealUs)) / wallUs,
    };
  }

  /**
   * waitForQuiet samples 500 ms windows until one has less than NOISE_LIMIT_PCT of other work, or
   * maxMs passes. It returns how long it waited and whether the machine was quiet at the end.
   */
  async waitForQuiet(maxMs: number): Promise<{ waitedMs: number; quiet: boolean }> {
    const start = performance.now();
    for (;;) {
      const s = this.snapshot();
      await sleep(500);
      const n = this.since(s);
      const waitedMs = performance.now() - start;
      if (!isDisturbed(n)) return { waitedMs, quiet: true };
      if (waitedMs >= maxMs) return { waitedMs, quiet: false };
    }
  }
}
