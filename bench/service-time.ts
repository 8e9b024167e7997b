/**
 * service-time: what a bench server measures of itself. Each request is timed from the moment Node
 * hands it to the handler to the moment its last byte is handed to the kernel ('finish'), so the
 * figure leaves out the kernel, the client and any time the request waited for the event loop.
 * The parent writes `stats` on the server's stdin; the server answers one JSON line
 * {"type":"stats","n":…,"p50":…,"p99":…,"max":…} (ms) on stdout and starts a new window.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';

/** ServiceStats are one window's service times, in ms. */
export interface ServiceStats {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

let times: number[] = [];

/** timed wraps a request handler so that every request's service time is recorded. */
export function timed(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    res.once('finish', () => times.push(performance.now() - started));
    handler(req, res);
  };
}

/** answerStats answers `stats` lines on stdin (see above); onEnd runs when stdin closes. */
export function answerStats(onEnd: () => void): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() !== 'stats') return;
    const t = times.sort((a, b) => a - b);
    times = [];
    const at = (p: number): number => t[Math.min(t.length - 1, Math.max(0, Math.ceil(p * t.length) - 1))] ?? NaN;
    const stats: ServiceStats = { n: t.length, p50: at(0.5), p99: at(0.99), max: t[t.length - 1] ?? NaN };
    process.stdout.write(JSON.stringify({ type: 'stats', ...stats }) + '\n');
  });
  lines.on('close', onEnd);
}
