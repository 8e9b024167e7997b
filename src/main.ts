/**
 * main: the composition root. It loads config, opens the store, builds the first runtime, wires
 * the data plane and the control plane together, and owns activation and shutdown.
 */
import http from 'node:http';
import { dirname, join } from 'node:path';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { DestinationStream, Logger } from 'pino';
import { ConfigError, loadConfig, validateApart, readConfigText, DEFAULT_CONFIG } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import { createControlApp } from './control/app.js';
import { answerClientError } from './http/errors.js';
import { Activator, type ActivationRequest, type ActivationResult } from './activation.js';
import { Heartbeat } from './admin/nodes.js';
import { writeFile, rename } from 'node:fs/promises';
import { createAccessLog, createLogger } from './log.js';
import { Metrics, timedStore } from './metrics.js';
import { SelfGuard } from './proxy/dial.js';
import { createProxyServer } from './proxy/server.js';
import { buildRuntime, listenerAddresses, RuntimeRef } from './runtime.js';
import { openStore } from './sessions/open.js';
import { TieredStore } from './sessions/tiered.js';
import { Sessions } from './sessions/session.js';
import { prepareIdps, type PreparedIdps } from './auth/idps.js';
import { preparePac, type PreparedPac } from './pac/files.js';
import { Directory } from './directory/directory.js';
import { ScimTokens } from './scim/tokens.js';
import { AdminTokens } from './admin/tokens.js';
import { DEFAULT_SCIM_RATE_LIMIT, ScimRateLimiter } from './scim/ratelimit.js';
import { createScimHandler } from './scim/server.js';
import { Identifier } from './auth/identify.js';
import { Gateway } from './auth/gateway.js';
import { defaultAcsUrl, spEntityId } from './auth/saml.js';
import { parseHostPort } from './config/ip.js';
import type { StandaloneLabIdp } from './labidp/standalone.js';
import type { WorkerLink } from './workers.js';
import { prepareInspection } from './tls/inspection.js';

/** StartOptions selects the config (a file, an object for tests, or the built-in default) and log sinks. */
export interface StartOptions {
  readonly configPath?: string;
  readonly config?: ConfigInput;
  readonly accessLog?: DestinationStream;
  readonly appLog?: DestinationStream;
  /** worker links this instance to its sibling worker processes on one node (src/workers.ts). */
  readonly worker?: WorkerLink;
}

/** Tollgate is a running instance. */
export interface Tollgate {
  readonly proxyAddress: AddressInfo;
  readonly controlAddress: AddressInfo;
  /** The transparent listeners' addresses, when the config has them. */
  readonly transparentHttpAddress: AddressInfo | null;
  readonly transparentTlsAddress: AddressInfo | null;
  readonly runtime: RuntimeRef;
  readonly store: TieredStore;
  readonly log: Logger;
  activate(req?: ActivationRequest): Promise<ActivationResult>;
  /** reopenLogs reopens a file access log (SIGUSR1, after logrotate); false when it goes to stdout or a stream. */
  reopenLogs(): boolean;
  shutdown(): Promise<void>;
  /** follow builds config version n, which another worker of this node activated, from the store. */
  follow(version: number): Promise<void>;
}

/** startTollgate brings up both listeners; it rejects (and cleans up) when config or store fail. */
export async function startTollgate(opts: StartOptions = {}): Promise<Tollgate> {
  const readFile = (): Promise<Config> =>
    opts.config !== undefined ? validateApart(opts.config, '(inline config)') : loadConfig(opts.configPath);
  const first = await readFile();
  const log = createLogger(first.logging.level, opts.appLog);
  // A worker uses the lab IdP its primary runs, so every worker signs in against the same keys.
  const lab: LabIdp | null =
    opts.worker?.labIdp !== undefined ? { ...opts.worker.labIdp, close: async () => {} } : first.labIdp?.enabled ? await startEmbeddedLabIdp(first, log) : null;
  /** withLab: with the lab IdP on and no IdP configured, the lab IdP is the default IdP. */
  const withLab = async (c: Config): Promise<Config> => {
    if (lab === null || c.idps.length > 0) return c;
    const idp = { id: 'lab', name: 'Lab IdP (NOT FOR PRODUCTION)', ssoUrl: lab.ssoUrl, certificate: lab.certPath, entityId: lab.entityId, default: true, provisioning: 'jit' as const };
    return validateApart({ ...c, idps: [idp] }, '(lab IdP)');
  };
  try {
    await withLab(first);
  } catch (err) {
    await lab?.close();
    throw err;
  }
  const source = opts.config !== undefined ? '(inline config)' : (opts.configPath ?? '(default config)');
  const baseDir = opts.configPath !== undefined ? dirname(opts.configPath) : process.cwd();

  const backend = await openStore(first.store, { onError: (err: Error) => log.warn({ err: err.message }, 'store connection problem') });
  let cache: TieredStore | null = null;
  const metrics = new Metrics(() => cache?.stats() ?? { hits: 0, misses: 0 });
  if (opts.worker !== undefined) metrics.serveToPrimary();
  const store = new TieredStore(timedStore(backend, metrics.storeLatency));
  cache = store;
  await store.start?.();
  /** runtimeRef, once built, lets an activation keep the running leaf minter when nothing it depends on changed. */
  let runtimeRef: RuntimeRef | null = null;
  // Activation: the file (or inline config) is the node's own text; on Redis the store's active version wins.
  const activator = new Activator({
    store: backend,
    shared: first.store.type === 'redis',
    log,
    metrics,
    source,
    readOwn: () =>
      opts.config !== undefined ? Promise.resolve(JSON.stringify(opts.config, null, 2)) : opts.configPath !== undefined ? readConfigText(opts.configPath) : Promise.resolve(JSON.stringify(DEFAULT_CONFIG, null, 2)),
    prepare: async (c) => {
      const full = await withLab(c);
      const { idps, pac } = await prepareFiles(full, { baseDir, store, source });
      // With inspection on and no CA, this refuses the start (or the activation), saying how to make one.
      const insp = await prepareInspection(full, { baseDir, source, previous: runtimeRef?.current.inspection ?? null });
      return { config: full, idps: idps.byId, pac: pac.files, inspection: insp.inspection, warnings: [...idps.warnings, ...pac.warnings, ...insp.warnings] };
    },
    ...(opts.configPath !== undefined ? { writeOwn: (text: string) => replaceFile(opts.configPath!, text) } : {}),
  });
  let runtime: RuntimeRef;
  let config: Config;
  try {
    const boot = await activator.boot();
    for (const w of boot.prepared.warnings) log.warn({ warning: w }, 'config warning');
    config = boot.prepared.config;
    runtime = new RuntimeRef(buildRuntime(config, boot.version, boot.prepared.idps, boot.prepared.pac, boot.prepared.inspection));
    runtimeRef = runtime;
    activator.attach(runtime);
    await activator.listen();
  } catch (err) {
    await store.close();
    await lab?.close();
    throw err;
  }
  const accessLog = createAccessLog(opts.accessLog ?? config.logging.accessLog, config.logging.format);
  metrics.configVersion.set(runtime.current.version);

  // The directory and SCIM tokens use the backend directly, not the LRU tier: ScimTokens keeps only
  // verified matches in memory, for at most a second, so a rotated token stops working on every node
  // within a second (at once on the node that rotated it).
  const sessions = new Sessions(store);
  const directory: Directory = new Directory({
    store: backend,
    onUserRevoked: async (tenant, userId, userName) => {
      const n = await sessions.revokeUser(userId);
      log.info({ tenant, userName, sessions: n }, 'user deprovisioned: sessions revoked');
    },
    // Profile and membership changes reach live sessions (status page, access log) without a new login.
    onUsersChanged: async (tenant, userIds) => {
      for (const id of userIds) {
        const ids = await sessions.sessionsOf(id);
        if (ids.length === 0) continue;
        const u = await directory.summaryOf(tenant, id);
        if (u === null) continue;
        for (const sid of ids) {
          await sessions.update(sid, { loginName: u.userName, displayName: u.displayName ?? '', department: u.department ?? '', groups: u.groups });
        }
      }
    },
  });
  const tokens = new ScimTokens(backend);
  const adminTokens = new AdminTokens(backend);
  const limiter = new ScimRateLimiter(backend, {
    limit: (tenant) => runtime.current.idps.get(tenant.slice(tenant.indexOf('/') + 1))?.config.scimRateLimit ?? DEFAULT_SCIM_RATE_LIMIT,
  });
  const scim = createScimHandler({
    directory,
    tokens,
    limiter,
    log,
    tenants: (orgId, idpId) => orgId === runtime.current.config.orgId && runtime.current.idps.get(idpId)?.config.provisioning === 'scim',
    onOperation: (_tenant, op, resource, status) => metrics.scimOperations.inc({ op, resource, status: String(status) }),
  });

  let draining = false;
  const self = new SelfGuard();

  const activate = (req: ActivationRequest = { who: 'signal', source: 'file' }): Promise<ActivationResult> => activator.activate(req);
  const reopenLogs = (): boolean => {
    const done = accessLog.reopen();
    log.info({ reopened: done }, done ? 'access log reopened' : 'access log is not a file; nothing to reopen');
    return done;
  };
  const configProblem = (): string | null =>
    activator.failed === null ? null : `config v${activator.failed.version} cannot be built here; running v${runtime.current.version}: ${activator.failed.errors.join('; ')}`;

  const identifier = new Identifier(sessions, (err) => log.warn({ err: err.message }, 'session bookkeeping failed (surrogate idle timer or last seen)'));
  const gateway = new Gateway({ runtime, store, sessions, identifier, directory, log, onLogin: (outcome) => metrics.logins.inc({ outcome }) });
  const worker = opts.worker;
  // An activation asked of one worker (admin API) reaches its siblings through the primary.
  const activateHere =
    worker === undefined
      ? activate
      : async (req?: ActivationRequest) => {
          const r = await activate(req);
          if (r.ok) worker.activated(r.version);
          return r;
        };
  const control = createControlApp({
    runtime, metrics, store, log, activate: activateHere, activator, configProblem, reopenLogs, certsDir: join(baseDir, 'certs'), draining: () => draining, scim, directory, tokens, adminTokens, gateway, sessions,
    proxyAddress: () => proxy.server.address() as AddressInfo | null,
    // The status page links to the inspection CA (at /ca.crt) whenever one is loaded.
    ca: () => {
      const ca = runtime.current.inspection?.ca;
      return ca == null ? null : { subject: ca.x509.subject.replace(/\n/g, ', '), sha256: ca.x509.fingerprint256 };
    },
    ...(worker !== undefined ? { cluster: { id: worker.id, metrics: () => worker.metrics(), notReady: () => worker.notReady() } } : {}),
  });
  const proxy = createProxyServer({ runtime, auth: gateway, ownHost: control.ownHost, accessLog, metrics, log, self }, config);
  const controlServer = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 16 * 1024 }, control.direct);
  controlServer.keepAliveTimeout = 5000;
  controlServer.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => void answerClientError(err, socket));
  controlServer.timeout = 60_000;

  const addrs = listenerAddresses(config);
  try {
    await listen(proxy.server, addrs.proxy.host, addrs.proxy.port);
    await listen(controlServer, addrs.control.host, addrs.control.port);
    if (proxy.transparentHttp !== null) await listen(proxy.transparentHttp, addrs.transparentHttp!.host, addrs.transparentHttp!.port);
    if (proxy.transparentTls !== null) await listen(proxy.transparentTls, addrs.transparentTls!.host, addrs.transparentTls!.port);
  } catch (err) {
    for (const s of [proxy.server, controlServer, proxy.transparentHttp, proxy.transparentTls]) if (s?.listening) s.close();
    await store.close();
    await lab?.close();
    throw err;
  }
  const proxyAddress = proxy.server.address() as AddressInfo;
  const controlAddress = controlServer.address() as AddressInfo;
  const transparentHttpAddress = (proxy.transparentHttp?.address() as AddressInfo | undefined) ?? null;
  const transparentTlsAddress = (proxy.transparentTls?.address() as AddressInfo | undefined) ?? null;
  // Every listener is ours: a request or tunnel that would reach one of them is a loop, and refused.
  for (const a of [proxyAddress, controlAddress, transparentHttpAddress, transparentTlsAddress]) if (a !== null) self.add(a.address, a.port);
  const heartbeat = new Heartbeat({ store: backend, runtime, metrics, activator, log, proxy: `${proxyAddress.address}:${proxyAddress.port}`, control: `${controlAddress.address}:${controlAddress.port}` });
  heartbeat.start();
  activator.beat = () => heartbeat.beat();
  log.info(
    {
      proxy: `${proxyAddress.address}:${proxyAddress.port}`,
      control: `${controlAddress.address}:${controlAddress.port}`,
      ...(transparentHttpAddress !== null ? { transparentHttp: `${transparentHttpAddress.address}:${transparentHttpAddress.port}` } : {}),
      ...(transparentTlsAddress !== null ? { transparentTls: `${transparentTlsAddress.address}:${transparentTlsAddress.port}` } : {}),
      store: store.kind,
      node: runtime.current.nodeName,
    },
    'tollgate listening',
  );

  let closing: Promise<void> | null = null;
  return {
    proxyAddress,
    controlAddress,
    transparentHttpAddress,
    transparentTlsAddress,
    runtime,
    store,
    log,
    activate,
    reopenLogs,
    follow: (version: number) => activator.follow(version),
    shutdown() {
      closing ??= (async () => {
        draining = true;
        const grace = runtime.current.config.limits.shutdownGraceMs;
        log.info({ graceMs: grace }, 'shutting down');
        controlServer.closeIdleConnections();
        await Promise.all([proxy.shutdown(grace), new Promise<void>((r) => controlServer.close(() => r()))]);
        controlServer.closeAllConnections();
        await heartbeat.stop();
        await activator.close();
        await store.close();
        await lab?.close();
        await accessLog.flush();
        log.flush();
      })();
      return closing;
    },
  };
}

/** LabIdp is the part of a running lab IdP that Tollgate needs. */
type LabIdp = Pick<StandaloneLabIdp, 'ssoUrl' | 'certPath' | 'entityId' | 'close'>;

/** replaceFile writes a file through a temporary one and a rename, so a reader never sees half of it. */
async function replaceFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

/** startEmbeddedLabIdp runs the lab IdP inside this process for the config's cloud (NOT FOR PRODUCTION). */
export async function startEmbeddedLabIdp(config: Config, log: Logger): Promise<StandaloneLabIdp> {
  // Loaded only when the lab IdP runs: its SAML and certificate libraries are not the data plane's.
  const { startStandaloneLabIdp } = await import('./labidp/standalone.js');
  const lc = config.labIdp!;
  const at = parseHostPort(lc.listen)!;
  const cloud = config.cloud.toLowerCase();
  const lab = await startStandaloneLabIdp({
    host: at.host,
    port: at.port,
    usersFile: lc.users,
    keyDir: lc.keys,
    spEntityId: spEntityId(cloud, config.orgId, false),
    acsUrl: defaultAcsUrl(cloud, config.authentication.gatewayScheme),
    log: (line) => log.info({ component: 'lab-idp' }, line),
  });
  log.warn({ ssoUrl: lab.ssoUrl, users: lab.users.map((u) => u.loginName) }, 'lab IdP running: NOT FOR PRODUCTION');
  return lab;
}

/** prepareFiles runs the activation steps that read and check files, reporting their errors together. */
async function prepareFiles(config: Config, opts: Parameters<typeof prepareIdps>[1]): Promise<{ idps: PreparedIdps; pac: PreparedPac }> {
  const [idps, pac] = await Promise.allSettled([prepareIdps(config, opts), preparePac(config, opts)]);
  if (idps.status === 'fulfilled' && pac.status === 'fulfilled') return { idps: idps.value, pac: pac.value };
  const errors: string[] = [];
  for (const r of [idps, pac]) {
    if (r.status === 'fulfilled') continue;
    if (!(r.reason instanceof ConfigError)) throw r.reason;
    errors.push(...r.reason.errors);
  }
  throw new ConfigError(opts.source, errors);
}

function listen(server: http.Server | NetServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
