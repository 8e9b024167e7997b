/**
 * contenders: starting and stopping what the bench measures, and the origin they all reach.
 *
 *   direct:      load -> origin                        (no proxy: the rig's own ceiling)
 *   naive:       load -> naive-proxy.mjs -> origin     (node:http + net, no features: the runtime's floor)
 *   tollgate:    load -> Tollgate (dist build) -> origin, a location without sign-in
 *   tollgate-id: load -> Tollgate -> origin, sign-in enforced, every request identified by IP surrogate
 *   squid:       load -> squid -N (generated conf) -> origin
 *
 * Each proxy is pinned to PROXY_CORE, the origin to LOAD_CORE, unless the caller places them
 * otherwise (bench:scale runs everything unpinned, and Tollgate and squid with several workers).
 * Every instance gets its own temp directory for config, logs and state, removed when it stops (or
 * when the bench ends).
 */
import { rmSync, writeFileSync, chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Children, freePort, waitForPort, findCommand, commandVersion, sleep, PROXY_CORE, LOAD_CORE, type Child, type HostPort } from './proc.js';

/** ContenderName names one column of the report. */
export type ContenderName = 'direct' | 'naive' | 'tollgate' | 'tollgate-id' | 'squid';

/** CONTENDERS is the column order of the report. */
export const CONTENDERS: readonly ContenderName[] = ['direct', 'naive', 'tollgate', 'tollgate-id', 'squid'];

/** AccessLogCount is what a contender's access log held when it stopped: lines, and lines naming a user. */
export interface AccessLogCount {
  readonly lines: number;
  readonly withLogin: number;
}

/** Origin is the running origin process: a small-GET HTTP listener and a TCP source/sink. */
export interface Origin {
  readonly pid: number;
  readonly http: HostPort;
  readonly tcp: HostPort;
  stop(): Promise<void>;
}

/** Contender is one running thing under test. */
export interface Contender {
  readonly name: ContenderName;
  /** The proxy's listener; null for direct, whose clients talk to the origin itself. */
  readonly proxy: HostPort | null;
  /** The process whose CPU and RSS are measured; null for direct. */
  readonly pid: number | null;
  /** One line saying what runs (version, pinning). */
  readonly description: string;
  /** Stops it; for Tollgate, the access log is counted after the process has exited and flushed it. */
  stop(): Promise<void>;
  /** Set by stop() when the contender writes a JSON access log the bench can count. */
  accessLog?: AccessLogCount;
  /** What the process wrote to stdout so far (V8's traces, when asked for). */
  output(): string;
}

/** Unavailable says why a contender was not run. */
export interface Unavailable {
  readonly name: ContenderName;
  readonly reason: string;
}

const LOOPBACK = '127.0.0.1';
const REPO = path.resolve(import.meta.dirname, '..');

/** OriginOptions places the origin (default: the load core) and sizes its small GET body (default: origin.ts's BODY_BYTES). */
export interface OriginOptions {
  readonly core?: number | null;
  readonly bodyBytes?: number;
}

/** startOrigin runs bench/origin.ts and waits for its ports. */
export async function startOrigin(children: Children, opts: OriginOptions = {}): Promise<Origin> {
  const args = ['--import', 'tsx', path.join(REPO, 'bench', 'origin.ts'), ...(opts.bodyBytes !== undefined ? ['--body', String(opts.bodyBytes)] : [])];
  const child = children.spawn('origin', process.execPath, args, { core: opts.core === undefined ? LOAD_CORE : opts.core, cwd: REPO });
  const deadline = Date.now() + 15_000;
  let ports: { http: number; tcp: number } | null = null;
  while (ports === null && Date.now() < deadline && child.proc.exitCode === null) {
    const out = child.stdout();
    if (out.includes('\n')) ports = JSON.parse(out.slice(0, out.indexOf('\n'))) as { http: number; tcp: number };
    else await sleep(50);
  }
  if (ports === null) {
    await children.stop(child);
    throw new Error(`origin did not start: ${child.stderrTail().trim()}`);
  }
  return {
    pid: child.pid,
    http: { host: LOOPBACK, port: ports.http },
    tcp: { host: LOOPBACK, port: ports.tcp },
    stop: () => children.stop(child),
  };
}

/** smallUrl is the origin's small GET, the URL every GET load asks for. */
export function smallUrl(origin: Origin): string {
  return `http://${origin.http.host}:${origin.http.port}/small`;
}

/** direct is the no-proxy contender. */
export function direct(): Contender {
  return { name: 'direct', proxy: null, pid: null, description: 'no proxy: load generator straight to the origin', output: () => '', stop: async () => {} };
}

/** BENCH_USER is the user every identified request is attributed to. */
export const BENCH_USER = 'bench-user@example.com';

/**
 * seedSurrogate signs BENCH_USER in from 127.0.0.1 before Tollgate starts: a session and an IP
 * surrogate for the location, written to the embedded store Tollgate then opens. This is what a
 * SAML sign-in leaves behind, without a browser in the bench.
 */
async function seedSurrogate(storePath: string, location: string): Promise<void> {
  const { EmbeddedStore } = await import('../src/sessions/embedded.js');
  const { Sessions } = await import('../src/sessions/session.js');
  const store = new EmbeddedStore({ path: storePath });
  try {
    const sessions = new Sessions(store);
    const fields = { userId: 'u-bench', loginName: BENCH_USER, displayName: 'Bench User', department: 'Bench', groups: ['bench'], idp: 'bench', authMethod: 'saml' as const };
    const s = await sessions.create({ ...fields, location, clientIp: '127.0.0.1' }, 6 * 3600_000);
    if (!(await sessions.mapSurrogate(location, '127.0.0.1', s.id, { enabled: true, idleMs: 6 * 3600_000 }))) throw new Error('could not map the surrogate');
  } finally {
    await store.close();
  }
}

/** TollgateOptions says how a Tollgate contender is configured and where it runs. */
export interface TollgateOptions {
  /** An access log to a file the bench counts when Tollgate stops, or none (`/dev/null`). */
  readonly accessLog: boolean;
  /**
   * The location enforces sign-in with the IP surrogate, and 127.0.0.1 is signed in as BENCH_USER
   * (seedSurrogate), so every request is identified from memory (an LRU hit).
   */
  readonly identified?: boolean;
  /** Arguments to node before the script (the profiler uses `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /** The config's `workers`; unset leaves the default (1: one process, no cluster primary). */
  readonly workers?: number;
  /** The core to pin to (default PROXY_CORE); null runs unpinned, which several workers need. */
  readonly core?: number | null;
  /** Another checkout's built `dist/src/cli.js` to run instead of this one's (bench:ab's base). */
  readonly cli?: string;
}

/** startTollgate runs `node dist/src/cli.js start` with a generated config. */
export async function startTollgate(children: Children, origin: Origin, opts: TollgateOptions): Promise<Contender | Unavailable> {
  const { accessLog, identified = false, nodeArgs = [], workers } = opts;
  const name: ContenderName = identified ? 'tollgate-id' : 'tollgate';
  const cli = opts.cli ?? path.join(REPO, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) return { name, reason: `${cli} missing (run npm run build)` };
  const dir = children.tempDir(name);
  const proxy: HostPort = { host: LOOPBACK, port: await freePort() };
  const control = await freePort();
  const configPath = path.join(dir, 'tollgate.yaml');
  const logPath = path.join(dir, 'access.log');
  const storePath = path.join(dir, 'store');
  const lines = [
    `listeners: { proxy: "${LOOPBACK}:${proxy.port}", control: "${LOOPBACK}:${control}" }`,
    `store: { type: embedded, path: "${storePath}" }`,
    'nodeName: bench',
    `connectPorts: [443, ${origin.tcp.port}]`,
    `logging: { level: warn, accessLog: "${accessLog ? logPath : '/dev/null'}" }`,
    ...(workers !== undefined ? [`workers: ${workers}`] : []),
  ];
  if (identified) {
    const { makeSigningPair } = await import('../src/labidp/idp.js');
    writeFileSync(path.join(dir, 'idp.pem'), makeSigningPair('Bench IdP').certPem);
    lines.push(
      'locations: [{ name: lab, ips: [127.0.0.0/8, "::1"], enforceAuthentication: true, surrogate: { enabled: true, idleMs: 21600000 } }]',
      `idps: [{ id: bench, name: Bench IdP, ssoUrl: "https://idp.bench.invalid/sso", certificate: "${path.join(dir, 'idp.pem')}", entityId: "urn:bench:idp", default: true }]`,
    );
    await seedSurrogate(storePath, 'lab');
  } else {
    lines.push('locations: [{ name: lab, ips: [127.0.0.0/8, "::1"] }]');
  }
  writeFileSync(configPath, [...lines, ''].join('\n'));
  const core = opts.core === undefined ? PROXY_CORE : opts.core;
  const child = children.spawn(name, process.execPath, [...nodeArgs, cli, 'start', '--config', configPath], { core, cwd: dir });
  const what = identified ? 'sign-in enforced, every request identified by IP surrogate' : 'a location without sign-in';
  const shape = workers === undefined ? '' : workers === 1 ? ', workers: 1 (one process)' : `, workers: ${workers} (a primary and ${workers} worker processes)`;
  const where = core === null ? ', unpinned' : '';
  return started(children, child, name, proxy, dir, `Tollgate (dist build, node ${process.version}), ${what}${shape}${where}, access log ${accessLog ? 'to a file' : 'off'}`, accessLog ? logPath : null);
}

/** startNaive runs bench/naive-proxy.mjs (node:http + net, no features) pinned to the proxy core. */
export async function startNaive(children: Children): Promise<Contender | Unavailable> {
  const dir = children.tempDir('naive');
  const proxy: HostPort = { host: LOOPBACK, port: await freePort() };
  const child = children.spawn('naive', process.execPath, [path.join(REPO, 'bench', 'naive-proxy.mjs'), String(proxy.port)], { core: PROXY_CORE, cwd: dir });
  return started(children, child, 'naive', proxy, dir, `naive Node proxy (node:http + net, no features, no log; node ${process.version})`, null);
}

/** countAccessLog counts a JSON-lines access log's lines and those with a non-empty login. */
export function countAccessLog(file: string): AccessLogCount {
  if (!existsSync(file)) return { lines: 0, withLogin: 0 };
  let lines = 0;
  let withLogin = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    lines++;
    try {
      if ((JSON.parse(line) as { login?: unknown }).login) withLogin++;
    } catch {
      // A torn line counts as a line without a login.
    }
  }
  return { lines, withLogin };
}

/** squidConf renders a minimal forward-proxy squid.conf: no cache, `workers` workers (default one), loopback clients only. */
export function squidConf(dir: string, proxy: HostPort, origin: Origin, accessLog: boolean, workers = 1): string {
  return [
    `http_port ${proxy.host}:${proxy.port}`,
    'visible_hostname bench',
    `workers ${workers}`,
    `acl localnet src 127.0.0.0/8`,
    `acl SSL_ports port 443 ${origin.tcp.port}`,
    `acl Safe_ports port 80 443 ${origin.http.port} ${origin.tcp.port}`,
    'acl CONNECT method CONNECT',
    'http_access deny !Safe_ports',
    'http_access deny CONNECT !SSL_ports',
    'http_access allow localnet',
    'http_access deny all',
    'cache deny all',
    'cache_mem 0 MB',
    accessLog ? `access_log stdio:${path.join(dir, 'access.log')}` : 'access_log none',
    `cache_log ${path.join(dir, 'cache.log')}`,
    `pid_filename ${path.join(dir, 'squid.pid')}`,
    `coredump_dir ${dir}`,
    // The ICMP pinger is a helper process that measures RTTs for peer selection; no peers here.
    'pinger_enable off',
    'shutdown_lifetime 0 seconds',
    '',
  ].join('\n');
}

/** SquidOptions says how many workers squid runs and where. */
export interface SquidOptions {
  /** squid.conf's `workers` (default 1). */
  readonly workers?: number;
  /** The core to pin to (default PROXY_CORE); null runs unpinned, which several workers need. */
  readonly core?: number | null;
  /** Another checkout's built `dist/src/cli.js` to run instead of this one's (bench:ab's base). */
  readonly cli?: string;
}

/**
 * SQUID_IPC_DIR is where squid's SMP processes put their UNIX-domain IPC sockets
 * (`<service>-coordinator.ipc`, `<service>-kid-N.ipc`). It is fixed when squid is built
 * (DEFAULT_STATEDIR, `$localstatedir/run/squid`; Debian's package makes it, owned by `proxy`);
 * squid.conf has no setting for it, so it cannot live in the bench's temp directory. Shared-memory
 * segments go to /dev/shm as `/<service>-*.shm`. Two squids can run side by side only under
 * different service names (`-n`).
 */
const SQUID_IPC_DIR = '/var/run/squid';

/**
 * startSquid runs squid on a generated squid.conf, if squid is installed. With one worker it is
 * `squid -N` (one process: no master, no kids); with several, `squid --foreground -n <service>`
 * (-N means no kids at all, so no SMP): a master that forks a coordinator and the workers, which
 * share the listening socket.
 */
export async function startSquid(children: Children, origin: Origin, accessLog: boolean, opts: SquidOptions = {}): Promise<Contender | Unavailable> {
  const { workers = 1 } = opts;
  const squid = findCommand('squid');
  if (squid === null) return { name: 'squid', reason: 'squid is not installed (apt-get install -y squid)' };
  if (workers > 1 && !existsSync(SQUID_IPC_DIR)) return { name: 'squid', reason: `squid with ${workers} workers needs ${SQUID_IPC_DIR} (its built-in directory for IPC sockets), owned by its cache_effective_user` };
  const dir = children.tempDir('squid');
  // Run as root, squid drops to its cache_effective_user (proxy), which must write its logs and pid here.
  chmodSync(dir, 0o777);
  const proxy: HostPort = { host: LOOPBACK, port: await freePort() };
  const confPath = path.join(dir, 'squid.conf');
  writeFileSync(confPath, squidConf(dir, proxy, origin, accessLog, workers));
  // A service name of this run's own, so the sockets and segments of squids started side by side do not meet.
  const service = `tgbench${process.pid}w${workers}`;
  const args = workers === 1 ? ['-N', '-f', confPath] : ['--foreground', '-n', service, '-f', confPath];
  const core = opts.core === undefined ? PROXY_CORE : opts.core;
  const child = children.spawn('squid', squid, args, { core, cwd: dir });
  const version = commandVersion(squid, ['-v']).replace(/^Squid Cache: /, '');
  const shape = workers === 1 ? 'workers 1, squid -N: one process' : `workers ${workers}, squid --foreground: a master, a coordinator and ${workers} workers`;
  // squid removes its shared-memory segments when it stops, but leaves its IPC sockets behind.
  const leftovers = workers === 1 ? undefined : () => removeNamed([SQUID_IPC_DIR, '/dev/shm'], `${service}-`);
  return started(children, child, 'squid', proxy, dir, `squid ${version} (${shape}, no cache${core === null ? ', unpinned' : ''}), access log ${accessLog ? 'to a file' : 'off'}`, null, leftovers);
}

/** removeNamed removes the files in `dirs` whose names start with `prefix`. */
function removeNamed(dirs: readonly string[], prefix: string): void {
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue; // No such directory: nothing of ours can be in it.
    }
    for (const n of names) if (n.startsWith(prefix)) rmSync(path.join(d, n), { force: true });
  }
}

async function started(
  children: Children,
  child: Child,
  name: ContenderName,
  proxy: HostPort,
  dir: string,
  description: string,
  jsonAccessLog: string | null,
  leftovers?: () => void,
): Promise<Contender | Unavailable> {
  const cleanup = () => {
    rmSync(dir, { recursive: true, force: true });
    leftovers?.();
  };
  try {
    await waitForPort(proxy, child, 20_000);
  } catch (err) {
    await children.stop(child);
    cleanup();
    return { name, reason: (err as Error).message };
  }
  const c: Contender = {
    name,
    proxy,
    pid: child.pid,
    description,
    output: () => child.stdout(),
    async stop() {
      await children.stop(child, 5000);
      if (jsonAccessLog !== null) c.accessLog = countAccessLog(jsonAccessLog);
      cleanup();
    },
  };
  return c;
}

/** isUnavailable tells a contender that did not start from one that did. */
export function isUnavailable(c: Contender | Unavailable): c is Unavailable {
  return 'reason' in c;
}
