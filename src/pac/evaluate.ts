/**
 * evaluate: runs a PAC file the way a browser would, in a QuickJS sandbox (pac-resolver on
 * quickjs-wasi), offline.
 *
 * pac-resolver's own dnsResolve, isResolvable and isInNet look names up with the system resolver,
 * and its myIpAddress opens a socket to a public DNS server. All four are replaced here: names
 * resolve only through the config's static `hosts` map (IP literals resolve to themselves), and
 * myIpAddress is the client address we are asked about. So validating or testing a PAC file never
 * sends a packet. Every predicate call is recorded, which is how `tollgate pac test` says which
 * rule matched.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createPacResolver, sandbox as builtins } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';
import { parseIPv4 } from '../config/ip.js';

/** PacEnv is the world a PAC file sees. */
export interface PacEnv {
  /** What myIpAddress() returns: the address of the machine running the browser. */
  readonly clientIp: string;
  /** The only names dnsResolve knows (lower-case name → address). */
  readonly hosts: ReadonlyMap<string, string>;
}

/** PacCall is one predicate the PAC called while answering, with its result. */
export interface PacCall {
  readonly fn: string;
  readonly args: readonly unknown[];
  readonly result: unknown;
}

/** PacAnswer is what FindProxyForURL returned for one URL, and the predicates it called on the way. */
export interface PacAnswer {
  readonly result: unknown;
  readonly calls: readonly PacCall[];
  /** Calls that passed shExpMatch more than one pattern (only the first is ever tested). */
  readonly extraPatterns: readonly PacCall[];
}

/** PacScriptError says why a PAC file cannot be used: it does not compile, or it threw. */
export class PacScriptError extends Error {
  override readonly name = 'PacScriptError';
}

/**
 * Limits for one PAC file: a runaway script is interrupted rather than hanging the activation.
 * Compiling includes pac-resolver's rewrite of the source on our side, which for a large file
 * (2,000 bypass entries, 140 KB) takes a few hundred milliseconds on a busy machine.
 */
const COMPILE_MS = 10_000;
const RUN_MS = 2000;
const MEMORY_BYTES = 32 * 1024 * 1024;

/** PREDICATES are the PAC functions whose calls are recorded (the conditions a rule tests). */
const PREDICATES = ['isPlainHostName', 'dnsDomainIs', 'localHostOrDomainIs', 'shExpMatch', 'isInNet', 'isResolvable', 'weekdayRange', 'dateRange', 'timeRange'] as const;

let wasm: Promise<WebAssembly.Module> | null = null;

/** engine compiles QuickJS's WebAssembly once per process; each PAC file gets its own VM from it. */
function engine(): Promise<WebAssembly.Module> {
  wasm ??= (async () => {
    const require = createRequire(import.meta.url);
    const path = require.resolve('quickjs-wasi/package.json').replace(/package\.json$/, 'quickjs.wasm');
    return WebAssembly.compile(await readFile(path));
  })();
  return wasm;
}

/** PacEvaluator is one compiled PAC file; dispose() frees its VM. */
export class PacEvaluator {
  #calls: PacCall[] = [];
  #extra: PacCall[] = [];
  #deadline = 0;
  private constructor(
    private readonly vm: QuickJS,
    private resolver: ((url: string, host: string) => Promise<string>) | null,
  ) {}

  /** compile loads a PAC file; it throws PacScriptError when the file does not compile or throws at load. */
  static async compile(text: string, env: PacEnv, filename = 'proxy.pac'): Promise<PacEvaluator> {
    let self: PacEvaluator | null = null;
    const vm = await QuickJS.create({ wasm: await engine(), memoryLimit: MEMORY_BYTES, interruptHandler: () => self !== null && Date.now() > self.#deadline });
    self = new PacEvaluator(vm, null);
    const ev = self;
    ev.#deadline = Date.now() + COMPILE_MS;
    try {
      ev.resolver = createPacResolver(vm, text, { filename, sandbox: ev.sandbox(env) });
    } catch (err) {
      vm.dispose();
      throw new PacScriptError(`does not compile: ${describe(err)}`);
    }
    return ev;
  }

  /** sandbox is pac-resolver's set of functions with the networked ones replaced and predicates recorded. */
  private sandbox(env: PacEnv): Record<string, (...args: never[]) => unknown> {
    const resolve = (name: unknown): string | null => {
      const h = String(name).toLowerCase();
      if (parseIPv4(h) >= 0) return h;
      const a = env.hosts.get(h);
      return a !== undefined && parseIPv4(a) >= 0 ? a : null;
    };
    const own: Record<string, (...args: never[]) => unknown> = {
      dnsResolve: resolve,
      isResolvable: (name: unknown) => resolve(name) !== null,
      myIpAddress: () => env.clientIp,
      isInNet: (name: unknown, pattern: unknown, mask: unknown) => {
        const ip = resolve(name);
        const p = parseIPv4(String(pattern));
        const m = parseIPv4(String(mask));
        if (ip === null || p < 0 || m < 0) return false;
        return (parseIPv4(ip) & m) >>> 0 === (p & m) >>> 0;
      },
      // A PAC's alert() goes nowhere: the browser's own log is not ours to fill.
      alert: () => undefined,
    };
    const all: Record<string, (...args: never[]) => unknown> = { ...(builtins as unknown as Record<string, (...args: never[]) => unknown>), ...own };
    for (const name of PREDICATES) {
      const fn = all[name]!;
      all[name] = (...args: never[]) => {
        const result = fn(...args);
        const call = { fn: name, args: [...args], result };
        this.#calls.push(call);
        if (name === 'shExpMatch' && args.length > 2) this.#extra.push(call);
        return result;
      };
    }
    return all;
  }

  /**
   * run asks the PAC about one URL as a browser does: the host without brackets, and for https only
   * scheme, host and port (browsers strip the path and query of secure URLs before asking).
   */
  async run(url: string): Promise<PacAnswer> {
    if (this.resolver === null) throw new Error('PAC evaluator is disposed');
    const u = new URL(url);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const asked = u.protocol === 'https:' || u.protocol === 'wss:' ? `${u.protocol}//${u.host}/` : u.href;
    this.#calls = [];
    this.#extra = [];
    this.#deadline = Date.now() + RUN_MS;
    let result: unknown;
    try {
      result = await this.resolver(asked, host);
    } catch (err) {
      throw new PacScriptError(`FindProxyForURL("${asked}", "${host}") threw: ${describe(err)}`);
    }
    return { result, calls: this.#calls, extraPatterns: this.#extra };
  }

  dispose(): void {
    if (this.resolver === null) return;
    this.resolver = null;
    this.vm.dispose();
  }
}

/** describe gives a script error's one-line reason (QuickJS errors carry name and message). */
function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`.split('\n')[0]!;
  return String(err).split('\n')[0]!;
}

const ANSWER = /^(DIRECT|(PROXY|HTTPS|HTTP|SOCKS|SOCKS4|SOCKS5|QUIC)\s+(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?)$/;

/** answerProblem says what is wrong with a FindProxyForURL result, or null when a browser can use it. */
export function answerProblem(result: unknown): string | null {
  if (typeof result !== 'string') return `returned ${result === null ? 'null' : typeof result}, not a string`;
  const parts = result.split(';').map((p) => p.trim());
  if (parts[parts.length - 1] === '' && parts.length > 1) parts.pop();
  for (const p of parts) {
    if (!ANSWER.test(p)) return `returned ${JSON.stringify(result.slice(0, 200))}, which is not a list of DIRECT / PROXY host:port`;
  }
  return null;
}
