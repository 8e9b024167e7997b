/**
 * Real redis-server processes for tests: one standalone server, a master behind a Sentinel, or a
 * three-master Cluster.
 * Each runs on free ports in its own temp dir, with persistence off; callers stop them in
 * t.teardown, and an exit hook kills any that a crashed test left behind.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** RedisServer is one spawned redis-server; stop and start again keep the same port. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** stop sends SIGTERM and waits for the process to exit. */
  stop(): Promise<void>;
  /** start spawns the server again on the same port and waits for PING. */
  start(): Promise<void>;
  /** pause freezes the process (SIGSTOP): connections stay open but nothing answers. */
  pause(): void;
  /** resume undoes pause (SIGCONT). */
  resume(): void;
}

/** RedisClusterHandle is a three-master Cluster with all slots assigned. */
export interface RedisClusterHandle {
  readonly seeds: string[];
  stop(): Promise<void>;
}

/** freePort asks the OS for a port that is free right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** redisCli runs one redis-cli command against a local port and returns its output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5_000 });
  return stdout;
}

/** startRedis spawns a standalone redis-server on a free port. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-redis-'));
  let node: Node | null = null;
  const start = async (): Promise<void> => {
    if (node?.running()) return;
    // stop removed the directory; persistence is off, so an empty one is all the server needs.
    await mkdir(dir, { recursive: true });
    node = await spawnRedis(port, dir, []);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    pause: () => node?.signal('SIGSTOP'),
    resume: () => node?.signal('SIGCONT'),
    async stop() {
      await node?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * startRedisCluster spawns three cluster-enabled servers, joins them with
 * `redis-cli --cluster create`, and waits until every node reports cluster_state:ok.
 * The bus port is chosen explicitly (`cluster-port`, Redis 7) rather than port + 10000, which
 * may be taken or out of range.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-redis-cluster-'));
  const nodes: Node[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const bus = await freePort();
      nodes.push(
        await spawnRedis(port, dir, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-port', String(bus),
          '--cluster-node-timeout', '5000',
        ]),
      );
    }
    const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...seeds, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 30_000,
    });
    await until(async () => {
      const infos = await Promise.all(nodes.map((n) => redisCli(n.port, 'cluster', 'info')));
      return infos.every((info) => info.includes('cluster_state:ok'));
    }, 30_000, 'cluster_state:ok on every node');
    return { seeds, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** RedisSentinelHandle is one master watched by one Sentinel, under `name`. */
export interface RedisSentinelHandle {
  readonly name: string;
  /** sentinels are the host:port of the Sentinel, as the store config lists them. */
  readonly sentinels: string[];
  readonly master: RedisServer;
  stop(): Promise<void>;
}

/**
 * startRedisSentinel spawns a standalone master and one Sentinel (`redis-server <conf>
 * --sentinel`) monitoring it with quorum 1, and waits until the Sentinel names the master.
 * Sentinel rewrites its config file, so the file lives in the temp dir.
 */
export async function startRedisSentinel(): Promise<RedisSentinelHandle> {
  const master = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-redis-sentinel-'));
  const name = 'tollgate-test';
  let sentinel: Node | null = null;
  const stop = async (): Promise<void> => {
    await sentinel?.stop();
    await master.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const conf = join(dir, 'sentinel.conf');
    await writeFile(conf, `sentinel monitor ${name} 127.0.0.1 ${master.port} 1\n`);
    sentinel = await spawnRedis(port, dir, [], conf, ['--sentinel']);
    await until(async () => {
      const addr = await redisCli(port, 'sentinel', 'get-master-addr-by-name', name);
      return addr.includes(String(master.port));
    }, 10_000, 'the sentinel to name the master');
    return { name, sentinels: [`127.0.0.1:${port}`], master, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface Node {
  readonly port: number;
  running(): boolean;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

async function spawnRedis(port: number, dir: string, extra: string[], conf?: string, mode: string[] = []): Promise<Node> {
  // Sentinel refuses the data options (--save, --appendonly), so it gets only the common ones.
  const data = mode.length > 0 ? [] : ['--save', '', '--appendonly', 'no'];
  const args = [
    ...(conf ? [conf] : []),
    ...mode,
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--daemonize', 'no',
    ...data,
    ...extra,
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    live.delete(child);
  });
  try {
    await until(async () => {
      if (gone) throw new Error(`redis-server on ${port} exited:\n${log}`);
      return (await redisCli(port, 'ping').catch(() => '')).trim() === 'PONG';
    }, 10_000, `redis-server on port ${port} answering PING`);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    port,
    running: () => !gone,
    signal: (sig) => void child.kill(sig),
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      // A paused server would hold the SIGTERM until continued.
      child.kill('SIGCONT');
      await exited;
    },
  };
}

/** until polls check every 50 ms until it returns true, or fails after timeoutMs. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
