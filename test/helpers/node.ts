/**
 * node: a Tollgate node in its own process (`tollgate start --config FILE`), for multi-node tests.
 * It listens on port 0; the ports come from its "tollgate listening" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { AdminTokens } from '../../src/admin/tokens.js';
import { openStore } from '../../src/sessions/open.js';
import { adminTokenName } from './tollgate.js';
import { startRedis, type RedisServer } from './redis.js';
import { startOrigin, type Origin } from './origin.js';
import { startLabIdpFixture, type LabIdpFixture } from './flow.js';

const CLI = join(import.meta.dirname, '../../src/cli.ts');

/** NodeProcess is a running node and its parsed app log. */
export interface NodeProcess {
  readonly proxyPort: number;
  readonly controlPort: number;
  readonly lines: Record<string, unknown>[];
  /** pid is the node's process id (to send it signals). */
  readonly pid: number;
  /** An admin API token named after the node, made in its store once it is up, and the headers that present it. */
  readonly adminToken: string;
  readonly admin: { readonly authorization: string };
  waitFor(pred: (l: Record<string, unknown>) => boolean, what: string, ms?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** collectJsonLines parses a stream's lines as JSON as they arrive (non-JSON lines become `{ raw }`). */
export function collectJsonLines(stream: NodeJS.ReadableStream): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  stream.on('data', (c: Buffer) => {
    buf += c.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  return lines;
}

/** startNode writes the config to `dir/<name>.json` and starts a node with it. */
export async function startNode(dir: string, name: string, config: ConfigInput): Promise<NodeProcess> {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ ...config, nodeName: name, listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0' } }));
  const p: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = collectJsonLines(p.stderr!);
  const waitFor = async (pred: (l: Record<string, unknown>) => boolean, what: string, ms = 20_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const hit = lines.find(pred);
      if (hit) return hit;
      if (p.exitCode !== null) throw new Error(`node ${name} exited (${p.exitCode}) while waiting for ${what}; log: ${JSON.stringify(lines)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what} on ${name}; log: ${JSON.stringify(lines)}`);
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null) return resolve();
      const t = setTimeout(() => p.kill('SIGKILL'), 8000);
      p.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      p.kill('SIGTERM');
    });
  try {
    const up = await waitFor((l) => l.msg === 'tollgate listening', 'listening');
    const adminToken = await issueAdminToken(config, adminTokenName(name));
    return {
      pid: p.pid!,
      adminToken,
      admin: { authorization: `Bearer ${adminToken}` },
      proxyPort: Number(String(up.proxy).split(':').pop()),
      controlPort: Number(String(up.control).split(':').pop()),
      lines,
      waitFor,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** issueAdminToken makes an admin token in the config's store, as `tollgate admin token` does. */
export async function issueAdminToken(config: ConfigInput, name: string): Promise<string> {
  const store = await openStore(validateConfig(config).store);
  try {
    return await new AdminTokens(store).generate(name);
  } finally {
    await store.close();
  }
}

/**
 * RedisLab is what a multi-node test shares: a temp dir, a Redis, an origin and the lab IdP, with a
 * config for nodes on them (the caller adds locations and the rest).
 */
export interface RedisLab {
  readonly dir: string;
  readonly redis: RedisServer;
  readonly origin: Origin;
  readonly lab: LabIdpFixture;
  config(extra: Partial<ConfigInput>): ConfigInput;
  /** close stops the nodes given, then the shared parts, and removes the dir. */
  close(nodes: readonly NodeProcess[]): Promise<void>;
}

/** startRedisLab starts the shared parts of a multi-node test. */
export async function startRedisLab(name: string): Promise<RedisLab> {
  const dir = mkdtempSync(join(tmpdir(), `tollgate-${name}-`));
  const [redis, origin, lab] = await Promise.all([startRedis(), startOrigin(), startLabIdpFixture({ id: 'lab' })]);
  return {
    dir,
    redis,
    origin,
    lab,
    config: (extra) => ({
      store: { type: 'redis', url: redis.url },
      logging: { level: 'info', accessLog: join(dir, 'access.log') },
      limits: { shutdownGraceMs: 1000 },
      idps: [lab.config({ domains: ['example.com'] })],
      ...extra,
    }),
    async close(nodes) {
      await Promise.all(nodes.map((n) => n.stop()));
      await Promise.all([lab.close(), origin.close()]);
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
