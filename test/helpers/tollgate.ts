/**
 * tollgate: starts a real in-process Tollgate on 127.0.0.1:0 with an embedded store in a temp dir,
 * capturing access-log lines, plus small clients that speak to it as a proxy.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startTollgate, type StartOptions, type Tollgate } from '../../src/main.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { AccessEntry } from '../../src/log.js';
import { AdminTokens } from '../../src/admin/tokens.js';

/** LogSink collects JSON lines written by pino. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  #buf = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.#buf += chunk.toString('utf8');
    let i: number;
    while ((i = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    cb();
  }
  get raw(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

/** TestTollgate is a running instance with its captured logs. */
export interface TestTollgate {
  readonly tg: Tollgate;
  readonly proxyPort: number;
  readonly controlPort: number;
  /** The transparent listeners' ports, 0 when the config has none. */
  readonly transparentHttpPort: number;
  readonly transparentTlsPort: number;
  readonly access: LogSink;
  readonly app: LogSink;
  readonly dataDir: string;
  /** An admin API token named after the node (nodes on one store each have their own), and the headers that present it. */
  readonly adminToken: string;
  readonly admin: { readonly authorization: string };
  /** Access entries, waiting briefly for the line of a transaction that just ended. */
  entries(): AccessEntry[];
  waitForEntry(pred: (e: AccessEntry) => boolean, ms?: number): Promise<AccessEntry>;
  close(): Promise<void>;
}

/** testConfig is a loopback config on port 0 with a location covering 127.0.0.0/8 minus 127.0.0.66. */
export function testConfig(dataDir: string, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0' },
    store: { type: 'embedded', path: dataDir },
    nodeName: 'test-node',
    locations: [
      {
        name: 'lab',
        ips: ['127.0.0.0/26', '127.0.0.128/25', '::1'],
        sublocations: [{ name: 'guest', ips: ['127.0.0.192/26'] }],
      },
    ],
    connectPorts: [443],
    ...extra,
  };
}

/** startTestTollgate starts Tollgate with testConfig (or the given config) and log capture. */
export async function startTestTollgate(config?: ConfigInput | ((dataDir: string) => ConfigInput), extra: Partial<StartOptions> = {}): Promise<TestTollgate> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-test-'));
  const access = new LogSink();
  const app = new LogSink();
  const cfg = typeof config === 'function' ? config(dataDir) : (config ?? testConfig(dataDir));
  const tg = await startTollgate({ config: cfg, accessLog: access, appLog: app, ...extra });
  const entries = () => access.lines as unknown as AccessEntry[];
  const adminToken = await new AdminTokens(tg.store).generate(adminTokenName(tg.runtime.current.nodeName));
  return {
    tg,
    adminToken,
    admin: { authorization: `Bearer ${adminToken}` },
    proxyPort: tg.proxyAddress.port,
    controlPort: tg.controlAddress.port,
    transparentHttpPort: tg.transparentHttpAddress?.port ?? 0,
    transparentTlsPort: tg.transparentTlsAddress?.port ?? 0,
    access,
    app,
    dataDir,
    entries,
    async waitForEntry(pred, ms = 3000) {
      const end = Date.now() + ms;
      for (;;) {
        const hit = entries().find(pred);
        if (hit) return hit;
        if (Date.now() > end) throw new Error(`no access entry matched; saw ${JSON.stringify(entries())}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await tg.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** adminTokenName turns a node name into an admin token name, so nodes sharing a store do not replace each other's. */
export function adminTokenName(nodeName: string): string {
  return nodeName.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+/, '').slice(0, 32) || 'test';
}

/** Reply is a buffered response. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** proxyGet sends an absolute-form request through the proxy, from a chosen local address. */
export function viaProxy(
  proxyPort: number,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; localAddress?: string; agent?: http.Agent | false } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET', path: url, headers: opts.headers ?? {}, localAddress: opts.localAddress, agent: opts.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** rawExchange writes raw bytes to the proxy and returns everything read until the server closes (or ms passes). */
export function rawExchange(port: number, data: string | Buffer, ms = 3000, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, ms);
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', (e) => {
      clearTimeout(t);
      if (out !== '') resolve(out);
      else reject(e);
    });
    s.write(data);
  });
}

/** connectVia opens a CONNECT tunnel through the proxy; resolves with the status and the socket. */
export function connectVia(proxyPort: number, authority: string, localAddress?: string): Promise<{ status: number; socket: net.Socket; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: authority, localAddress, agent: false });
    req.on('connect', (res, socket) => resolve({ status: res.statusCode ?? 0, socket, headers: res.headers, body: '' }));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: res.socket, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export function cleanupDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** controlCall sends one request to the control listener and buffers the answer. */
export function controlCall(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end();
  });
}
