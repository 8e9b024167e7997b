/**
 * tls: what TLS inspection's certificates cost. `npm run bench:tls [-- --rounds 3 --n 400]`
 *
 *   mint        a leaf for a new host: forge builds it, Node's crypto signs it, a SecureContext is made
 *   cached      a cached leaf: `cached(host)` (synchronous) and `await leaf(host)`
 *   handshake   client (core 1) --TLS 1.3, full handshake, SNI--> terminator (core 0) --SNICallback--> minter
 *               new host: every connection names a host never seen (mint + handshake)
 *               cached:   every connection names the same, already minted host
 *
 * Mint and cached figures are this process's CPU (process.cpuUsage, thread pool included) per
 * operation. Handshake figures are the terminator's CPU from /proc per connection (accept, handshake,
 * SNI lookup or mint, close), so the client's own work is not counted. Targets (of TLS inspection):
 * ≤ 5 ms of Tollgate CPU for a new-host handshake, ≤ 1.5 ms for a cached host. Medians of the rounds.
 * The terminator is the minter behind a bare Node TLS server, not the whole proxy around it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { connect, createSecureContext, type SecureContext } from 'node:tls';
import { parseArgs } from 'node:util';
import { checkCa, createCa, type CaKeyType } from '../src/tls/ca.js';
import { LeafMinter, type LeafKeyType } from '../src/tls/leaf.js';
import { Children, cpuMicros, LOAD_CORE, PROXY_CORE, sleep } from './proc.js';

const TARGET_NEW_MS = 5;
const TARGET_CACHED_MS = 1.5;
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, n: { type: 'string', default: '400' } } });
const ROUNDS = Number(values.rounds);
const N = Number(values.n);
const COMBOS: [CaKeyType, LeafKeyType][] = [
  ['rsa2048', 'ecdsa-p256'],
  ['p256', 'ecdsa-p256'],
  ['rsa2048', 'rsa2048'],
  ['p256', 'rsa2048'],
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = (f: () => void | Promise<void>) => async (): Promise<number> => {
  const c = process.cpuUsage();
  await f();
  const d = process.cpuUsage(c);
  return (d.user + d.system) / 1000;
};

const children = new Children(availableParallelism() >= 2);
if (children.pinning) execFileSync('taskset', ['-cp', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' });

/** handshakes opens n connections, 4 at a time, each naming host(i); each must verify against the CA. */
async function handshakes(port: number, ctx: SecureContext, n: number, host: (i: number) => string): Promise<void> {
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: host(i), secureContext: ctx });
      s.setTimeout(10_000, () => s.destroy(new Error('handshake timed out')));
      s.once('secureConnect', () => {
        if (!s.authorized) reject(new Error(`not trusted: ${String(s.authorizationError)}`));
      });
      s.on('data', () => {});
      s.once('error', reject);
      s.once('close', () => resolve());
    });
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) await one(next++);
    }),
  );
}

const rows: string[] = [];
let failed = false;
for (const [caType, leafType] of COMBOS) {
  const made = createCa({ keyType: caType });
  const ca = checkCa(made.certPem, made.keyPem);
  const mint: number[] = [];
  const cachedSync: number[] = [];
  const cachedAsync: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const m = new LeafMinter({ ca, keyType: leafType, cacheSize: 100_000 });
    await m.leaf('warm.bench.test');
    mint.push((await cpuMs(async () => { for (let i = 0; i < N; i++) await m.leaf(`m${i}.r${r}.bench.test`); })()) / N);
    const K = 200_000;
    cachedSync.push(((await cpuMs(() => { for (let i = 0; i < K; i++) m.cached('warm.bench.test'); })()) * 1000) / K);
    cachedAsync.push(((await cpuMs(async () => { for (let i = 0; i < K / 4; i++) await m.leaf('warm.bench.test'); })()) * 4000) / K);
  }

  const dir = children.tempDir('tls');
  const server = children.spawn('tls-server', process.execPath, ['--import', 'tsx', 'bench/tls-server.ts', '--ca', caType, '--leaf', leafType, '--dir', dir], { core: PROXY_CORE });
  let ready: { port: number; pid: number; caFile: string } | undefined;
  for (let i = 0; i < 200 && ready === undefined; i++) {
    await sleep(50);
    const line = server.stdout().split('\n').find((l) => l.includes('"ready"'));
    if (line) ready = JSON.parse(line) as typeof ready;
  }
  if (ready === undefined) throw new Error(`tls-server did not start: ${server.stderrTail()}`);
  const clientCtx = createSecureContext({ ca: readFileSync(ready.caFile, 'utf8') });
  await handshakes(ready.port, clientCtx, 50, () => 'warm.bench.test');
  const fresh: number[] = [];
  const cached: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let before = cpuMicros(ready.pid);
    await handshakes(ready.port, clientCtx, N, (i) => `h${i}.r${r}.bench.test`);
    fresh.push((cpuMicros(ready.pid) - before) / 1000 / N);
    before = cpuMicros(ready.pid);
    await handshakes(ready.port, clientCtx, N, () => 'warm.bench.test');
    cached.push((cpuMicros(ready.pid) - before) / 1000 / N);
  }
  server.proc.kill('SIGUSR2');
  await sleep(200);
  const stats = JSON.parse(server.stdout().split('\n').filter((l) => l.includes('"stats"')).pop() ?? '{}') as { mints?: number };
  await children.stop(server);
  // Every new-host connection minted once, and the cached ones not at all (1 for the warm-up host).
  const expectMints = 1 + ROUNDS * N;
  if (stats.mints !== expectMints) {
    failed = true;
    rows.push(`  ${caType} CA, ${leafType} leaf: the terminator minted ${stats.mints} leaves, expected ${expectMints}: figures not valid`);
  }
  const f = median(fresh);
  const c = median(cached);
  rows.push(
    `  ${`${caType} CA, ${leafType} leaf`.padEnd(28)} mint ${median(mint).toFixed(2)} ms   cached ${median(cachedSync).toFixed(2)} µs (sync) ${median(cachedAsync).toFixed(2)} µs (await)   ` +
      `handshake new host ${f.toFixed(2)} ms ${f <= TARGET_NEW_MS ? 'ok' : 'OVER'}   cached ${c.toFixed(2)} ms ${c <= TARGET_CACHED_MS ? 'ok' : 'OVER'}`,
  );
}
process.stdout.write(
  `TLS inspection certificates: CPU per operation, median of ${ROUNDS} rounds of ${N}${children.pinning ? ' (terminator on core 0, client on core 1)' : ' (unpinned)'}\n` +
    `targets: new-host handshake <= ${TARGET_NEW_MS} ms, cached-host handshake <= ${TARGET_CACHED_MS} ms of terminator CPU\n` +
    `${rows.join('\n')}\n` +
    `(the config's default is an ECDSA P-256 leaf key; \`tollgate ca init\` makes an RSA 2048 CA unless --key p256)\n`,
);
process.exitCode = failed ? 1 : 0;
