/**
 * loadgen: the bench's own load generator for what wrk cannot do, run as a child pinned to the
 * load core. It takes one JSON job as argv[2] and prints one JSON result line.
 *
 *   connect: Client -> Proxy (CONNECT origin:port) -> "200" -> client ends -> wait for close
 *            `concurrency` loops open tunnels back to back until the deadline or maxOps.
 *   bulk:    Client [-> Proxy (CONNECT)] -> origin `SEND n` -> n bytes down -> origin ends
 *            or (upload) origin `RECV n` -> n bytes up -> origin answers `OK` and ends.
 *            One stream; timed from the request to the last byte (upload: to the OK).
 *
 * Every socket has a deadline, and the whole job is bounded by `durationMs`/`timeoutMs`.
 */
import net, { type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { writeBytes } from './bytes.js';

/** ConnectJob opens tunnels through `proxy` to `target` (host:port) as fast as it can. */
export interface ConnectJob {
  readonly kind: 'connect';
  readonly proxy: { host: string; port: number };
  readonly target: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxOps: number;
  readonly opTimeoutMs: number;
}

/** BulkJob pulls `bytes` from the origin's TCP source (or pushes them to its sink), through a proxy tunnel or directly. */
export interface BulkJob {
  readonly kind: 'bulk';
  readonly direction: 'down' | 'up';
  readonly proxy: { host: string; port: number } | null;
  readonly origin: { host: string; port: number };
  readonly bytes: number;
  readonly timeoutMs: number;
}

export type Job = ConnectJob | BulkJob;

/** ConnectResult: tunnels fully set up and closed, failures, and setup latency (CONNECT sent → 200 read). */
export interface ConnectResult {
  readonly kind: 'connect';
  readonly ok: number;
  readonly errors: number;
  readonly elapsedMs: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** BulkResult: bytes received and the time they took; `error` is set when the stream did not complete. */
export interface BulkResult {
  readonly kind: 'bulk';
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly error: string | null;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * READ_BUFFER is the one buffer every socket here reads into (`onread`). The default read path
 * allocates a fresh 64 KiB buffer per read; on this kind of VM the page faults that brings cost
 * more than the copy itself, and would make the client, not the proxy, the bottleneck of a bulk
 * stream. Callbacks run one at a time and never keep the buffer, so sharing it is safe.
 */
const READ_BUFFER = Buffer.alloc(1 << 20);

/** Reader consumes bytes as they arrive; `bytes` is only valid during the call. */
type Reader = (bytes: Buffer) => void;

/** connectTo opens a TCP connection whose bytes go to the reader `current()` returns at the time. */
function connectTo(host: string, port: number, current: () => Reader): Socket {
  return net.connect({
    host,
    port,
    noDelay: true,
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number, buf: Uint8Array) => {
        current()(Buffer.from(buf.buffer, buf.byteOffset, n));
        return true;
      },
    },
  });
}

/** Tunnel is an open CONNECT tunnel; `onBytes` receives what arrives after the 2xx head. */
interface Tunnel {
  readonly sock: Socket;
  /** Bytes that arrived in the same read as the end of the head. */
  readonly early: number;
  onBytes: Reader;
}

/**
 * openTunnel connects to the proxy and sends CONNECT; it resolves once a 2xx head has arrived,
 * and rejects on any other answer, a close, or the timeout.
 */
function openTunnel(proxy: { host: string; port: number }, target: string, timeoutMs: number): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    let head = '';
    let tunnel: Tunnel | null = null;
    const readHead: Reader = (bytes) => {
      head += bytes.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > 16384) fail(new Error('CONNECT answer head too large'));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.slice(0, 64));
      if (!status || status[1]![0] !== '2') return fail(new Error(`CONNECT answered ${status ? status[1] : 'garbage'}`));
      clearTimeout(timer);
      sock.off('error', fail);
      sock.off('close', onClose);
      tunnel = { sock, early: head.length - (end + HEAD_END.length), onBytes: () => {} };
      resolve(tunnel);
    };
    const sock = connectTo(proxy.host, proxy.port, () => (tunnel === null ? readHead : tunnel.onBytes));
    const timer = setTimeout(() => fail(new Error('CONNECT timed out')), timeoutMs);
    function fail(err: Error) {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    }
    const onClose = () => fail(new Error('proxy closed before answering CONNECT'));
    sock.on('error', fail);
    sock.on('close', onClose);
    sock.once('connect', () => sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
  });
}

/** closeGracefully ends our side and resolves when the socket is fully closed (or after timeoutMs). */
function closeGracefully(sock: Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, timeoutMs);
    sock.on('error', () => sock.destroy());
    sock.once('close', (hadError) => {
      clearTimeout(timer);
      resolve(!hadError);
    });
    sock.end();
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** runConnect runs `concurrency` loops of CONNECT + 200 + close until the deadline or maxOps. */
async function runConnect(job: ConnectJob): Promise<ConnectResult> {
  const start = performance.now();
  const deadline = start + job.durationMs;
  let started = 0;
  let ok = 0;
  let errors = 0;
  const setupUs: number[] = [];
  const loop = async () => {
    while (performance.now() < deadline && started < job.maxOps) {
      started++;
      const t0 = performance.now();
      try {
        const { sock } = await openTunnel(job.proxy, job.target, job.opTimeoutMs);
        setupUs.push((performance.now() - t0) * 1000);
        if (await closeGracefully(sock, job.opTimeoutMs)) ok++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const elapsedMs = performance.now() - start;
  setupUs.sort((a, b) => a - b);
  return { kind: 'connect', ok, errors, elapsedMs, p50Us: percentile(setupUs, 50), p99Us: percentile(setupUs, 99) };
}

/** runBulk moves job.bytes from the origin's source (or to its sink) and times it from request to last byte. */
async function runBulk(job: BulkJob): Promise<BulkResult> {
  const t0 = performance.now();
  const up = job.direction === 'up';
  let got = 0;
  let reply = '';
  const count: Reader = (bytes) => {
    if (up) reply += bytes.toString('latin1');
    else got += bytes.length;
  };
  try {
    let sock: Socket;
    if (job.proxy !== null) {
      const t = await openTunnel(job.proxy, `${job.origin.host}:${job.origin.port}`, job.timeoutMs);
      t.onBytes = count;
      if (!up) got += t.early;
      sock = t.sock;
    } else {
      sock = connectTo(job.origin.host, job.origin.port, () => count);
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
    }
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bulk transfer timed out')), Math.max(1, job.timeoutMs - (start - t0)));
      // With onread there are no 'data' events, but 'end' still marks the origin's FIN.
      sock.once('end', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.write(`${up ? 'RECV' : 'SEND'} ${job.bytes}\n`);
      if (up) writeBytes(sock, job.bytes, () => {});
    }).finally(() => sock.destroy());
    const elapsedMs = performance.now() - start;
    if (up) return { kind: 'bulk', bytes: job.bytes, elapsedMs, error: reply === 'OK\n' ? null : `the sink answered ${JSON.stringify(reply.slice(0, 40))}, not OK` };
    return { kind: 'bulk', bytes: got, elapsedMs, error: got === job.bytes ? null : `received ${got} of ${job.bytes} bytes` };
  } catch (err) {
    return { kind: 'bulk', bytes: got, elapsedMs: performance.now() - t0, error: (err as Error).message };
  }
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const result = job.kind === 'connect' ? await runConnect(job) : await runBulk(job);
process.stdout.write(JSON.stringify(result) + '\n');
