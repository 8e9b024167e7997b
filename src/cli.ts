#!/usr/bin/env node
/**
 * cli: the `tollgate` command.
 *
 *   tollgate start [--config FILE]        run the proxy and control listeners
 *   tollgate check-config FILE            validate a config and print every error
 *   tollgate activate [--config FILE]     ask the running instance to re-read and activate its config
 *   tollgate reauth [--user NAME]         force re-authentication (everyone, or one user)
 *   tollgate admin token [--name NAME]    create the admin API token the other commands present
 *   tollgate idp import --metadata FILE   an IdP from its SAML metadata
 *   tollgate log reopen                   reopen the access log after rotation
 *   tollgate lab-idp [...]                run the lab SAML IdP (not for production)
 *   tollgate pac test URL | pac show      what the PAC file says, offline
 *   tollgate ca init|import|show          the TLS-inspection CA
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { relaunch, LAUNCH_OPTIONS } from './launch.js';
import { loadConfig, ConfigError } from './config/load.js';
import { listenerAddresses } from './runtime.js';
import type { WorkerSide } from './workers.js';
import type { Config } from './config/schema.js';
import { adminCall, adminCommand, failure, idpCommand } from './admin/client.js';
import type { Explanation } from './admin/explain.js';

const HELP = `Usage: tollgate <command> [options]

Commands:
  start [--config FILE]         Start Tollgate. Without --config it runs the built-in default:
                                proxy 127.0.0.1:9400, control 127.0.0.1:9401, embedded store in ./data,
                                one location "local" covering loopback.
  check-config FILE             Validate FILE (YAML or JSON); print every error; exit 1 if any.
  activate [--config FILE]      Tell the running Tollgate (found through FILE's control listener,
                                or 127.0.0.1:9401) to re-read its config and activate it.
                                SIGHUP does the same.
  admin token [--name NAME] [--config FILE] [--print]
                                Create the admin API token (default name "admin") in the store and write
                                it, mode 0600, beside the data directory (./data -> ./data.admin-token).
                                activate, scim token, users, groups and reauth present it (or
                                TOLLGATE_ADMIN_TOKEN); see "tollgate admin --help".
  idp import --metadata FILE --id ID [--domains a.com,b.com] [--stage]
                                Read an IdP's SAML metadata, write its signing certificates to
                                certs/ID.pem and print the "idps:" entry (or stage it in the running
                                node's draft); see "tollgate idp --help".
  explain URL --client-ip IP [--user NAME] [--browser] [--json] [--config FILE]
                                Why the running node would block, redirect or forward this request:
                                each step of the proxy's pipeline and the rule that decided it.
  log reopen [--config FILE]    Reopen a file access log after logrotate moved it (SIGUSR1 does the same).
  scim token --idp ID [--config FILE]
                                Generate a new SCIM bearer token for IdP ID (its provisioning must be
                                scim) and print it with the SCIM base URL; the old token stops working.
  users --idp ID [--config FILE]
  groups --idp ID [--config FILE]
                                List what SCIM and JIT provisioning created (User Management).
  reauth [--user NAME] [--config FILE]
                                Force re-authentication: end the sessions of one user (login name),
                                or of everyone, on every node. Their next page load signs in again.
  pac test URL [--client-ip IP] [--location NAME] [--pac FILE] [--config FILE]
                                Print what the PAC file returns for URL and which rule matched,
                                offline, on the config's PAC or on FILE.
  pac show [--location NAME] [--config FILE]
                                Print the PAC file Tollgate serves (default or location NAME's).
  ca init [--key TYPE] [--permit DOMAIN]... [--config FILE]
  ca import CERT KEY [--config FILE]
  ca show [--config FILE]
                                Create, import or show the CA that TLS inspection signs leaves
                                with (key mode 0600, never committed); see "tollgate ca --help".
  lab-idp [--listen HOST:PORT] [--users FILE] [--keys DIR] [--cloud NAME]
                                Run the lab SAML IdP (NOT FOR PRODUCTION) and print its SSO URL and
                                certificate; see "tollgate lab-idp --help".
  --help                        This text.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return cmd === undefined ? 2 : 0;
  }
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'activate':
      return activate(rest);
    case 'scim':
      if (rest[0] !== 'token') {
        process.stderr.write('tollgate scim: the only subcommand is "token"\n');
        return 2;
      }
      return scimToken(rest.slice(1));
    case 'users':
    case 'groups':
      return listDirectory(cmd, rest);
    case 'reauth':
      return reauth(rest);
    case 'pac': {
      const { pacCommand } = await import('./pac/command.js');
      return pacCommand(rest);
    }
    case 'ca': {
      const { caCommand } = await import('./tls/command.js');
      return caCommand(rest);
    }
    case 'admin':
      return adminCommand(rest);
    case 'idp':
      return idpCommand(rest);
    case 'log':
      return logCommand(rest);
    case 'explain':
      return explainCommand(rest);
    case 'lab-idp': {
      const { labIdpCommand } = await import('./labidp/standalone.js');
      return labIdpCommand(rest);
    }
    default:
      process.stderr.write(`tollgate: unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

function opts(args: string[], extra: Record<string, { type: 'string' | 'boolean' }> = {}): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  return parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, ...extra }, allowPositionals: true });
}

/**
 * tuneCollector sets two things in V8's collector for a serving process. Both flags are read at
 * each collection, so setting them at start is as good as the command line's.
 *
 * - Allocation-site pretenuring is off. Under proxy load V8 judged the sites that make each
 *   request's objects (the transaction, Node's request and response) long-lived and allocated them
 *   straight in the old generation, where they died as garbage only a full collection frees: about
 *   700 bytes a request, a mark-compact every 2 s at 12,000 requests/s, and the memory and p99 that
 *   follow. Without it, objects that live through two young collections still move to the old
 *   generation as usual (about 220 bytes a request here).
 * - The old generation grows by HEAP_GROWING_PERCENT over what the last full collection kept, V8's
 *   own conservative factor, instead of the up to 2-4x it picks for a heap it judges cheap to
 *   collect. A proxy's old generation is mostly garbage from connections that ended: under new
 *   connections it swelled from about 11 MiB to 43 MiB before a collection. With the factor, peak
 *   RSS over the bench's loads fell from about 130 to 107 MiB, and the CPU per request and per
 *   tunnel stayed within the run-to-run spread (interleaved rounds).
 */
function tuneCollector(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** HEAP_GROWING_PERCENT is the old generation's growth over its live size before the next full collection. */
const HEAP_GROWING_PERCENT = 30;

async function start(args: string[]): Promise<number> {
  const { values } = opts(args);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const notRelaunched = relaunch();
  if (notRelaunched !== null) process.stderr.write(`tollgate: starting without ${LAUNCH_OPTIONS.map((o) => o.arg).join(' ')}: ${notRelaunched}\n`);
  tuneCollector();
  const configPath = values.config !== undefined ? String(values.config) : undefined;
  const workers = await import('./workers.js');
  if (workers.isWorker()) return startWorker(configPath, workers.workerLink());
  let config: Config;
  try {
    config = await loadConfig(configPath);
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `tollgate: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const count = workers.workerCount(config.workers);
  if (count > 1) return startPrimary(config, count);
  const { startTollgate } = await import('./main.js');
  let tg;
  try {
    tg = await startTollgate(configPath !== undefined ? { configPath } : {});
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `tollgate: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  process.on('SIGHUP', () => void tg.activate());
  // logrotate's postrotate: `kill -USR1 <pid>` (as `squid -k rotate`); this replaces Node's debugger-on-SIGUSR1.
  process.on('SIGUSR1', () => void tg.reopenLogs());
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      tg.log.info({ signal }, 'signal received');
      tg.shutdown().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** startPrimary supervises `count` worker processes (the lab IdP, when on, runs here, once for all). */
async function startPrimary(config: Config, count: number): Promise<number> {
  const { startEmbeddedLabIdp } = await import('./main.js');
  const { createLogger } = await import('./log.js');
  const { runPrimary } = await import('./workers.js');
  const log = createLogger(config.logging.level);
  let lab;
  try {
    lab = config.labIdp?.enabled ? await startEmbeddedLabIdp(config, log) : undefined;
  } catch (err) {
    process.stderr.write(`tollgate: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const code = await runPrimary({ count, log, labIdp: lab && { ssoUrl: lab.ssoUrl, certPath: lab.certPath, entityId: lab.entityId } });
  await lab?.close();
  log.flush();
  return code;
}

/** startWorker runs one worker's Tollgate; the primary tells it when to activate and to stop. */
async function startWorker(configPath: string | undefined, link: WorkerSide): Promise<number> {
  const { startTollgate } = await import('./main.js');
  let tg;
  try {
    tg = await startTollgate({ ...(configPath !== undefined ? { configPath } : {}), worker: link });
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `tollgate: worker ${link.id} cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const running = tg;
  link.attach({ activate: () => running.activate(), follow: (v) => running.follow(v), shutdown: () => running.shutdown() }, running.log);
  // Signals sent to the whole process group (Ctrl-C) reach the primary too, which stops every worker.
  process.on('SIGHUP', () => {});
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void running.shutdown().finally(() => process.exit(0)));
  return new Promise<number>(() => {});
}

async function checkConfig(args: string[]): Promise<number> {
  const { values, positionals } = opts(args);
  const file = positionals[0] ?? (values.config as string | undefined);
  if (file === undefined) {
    process.stderr.write('tollgate check-config: name the config file\n');
    return 2;
  }
  try {
    const c = await loadConfig(file);
    process.stdout.write(`${file}: ok (${c.locations.length} location${c.locations.length === 1 ? '' : 's'}, store ${c.store.type}, cloud ${c.cloud})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).message}\n`);
    return 1;
  }
}

async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = opts(args, { 'client-ip': { type: 'string' }, user: { type: 'string' }, browser: { type: 'boolean' }, json: { type: 'boolean' } });
  const url = positionals[0];
  if (url === undefined || typeof values['client-ip'] !== 'string') {
    process.stderr.write('tollgate explain: give a URL and --client-ip IP\n');
    return 2;
  }
  const q = new URLSearchParams({ url, clientIp: values['client-ip'], ...(typeof values.user === 'string' ? { user: values.user } : {}), ...(values.browser ? { browser: '1' } : {}) });
  try {
    const r = await adminCall(values.config as string | undefined, 'GET', `/api/explain?${q}`);
    if (r.status !== 200) return failure(r);
    if (values.json) {
      process.stdout.write(JSON.stringify(r.body, null, 2) + '\n');
      return 0;
    }
    const b = r.body as unknown as Explanation;
    const loc = b.location === null ? 'no location' : `location ${b.location.name}${b.location.sublocation ? ` / ${b.location.sublocation}` : ''} (${b.location.cidr ?? '?'}; sign-in ${b.location.enforceAuthentication ? 'required' : 'not required'})`;
    const out = [`${b.request.method} ${b.request.url} from ${b.request.clientIp}${b.request.browser ? ' (a browser)' : ''}`, `  ${loc}`];
    if (b.exemption) out.push(`  exempt by ${b.exemption.pattern}`);
    if (b.identity) out.push(`  identified as ${b.identity.login} by ${b.identity.by} (session ${b.identity.session.slice(0, 8)}...)`);
    for (const s of b.steps) out.push(`  ${s.step}: ${s.outcome === 'pass' ? 'pass' : `${s.decision!.kind}${s.decision!.kind === 'deny' ? ` ${s.decision!.status} ${s.decision!.code}` : ''}`}`);
    if (b.pac) out.push(`  PAC (${b.pac.file}): ${b.pac.answer} (${b.pac.rule})`);
    if (b.inspection) out.push(`  inspection: ${b.inspection.inspect ? 'on' : 'off'} (${b.inspection.reason})`);
    out.push(`=> ${b.outcome.status ?? ''}${b.outcome.status ? ' ' : ''}${b.outcome.action}${b.outcome.reason ? ` (${b.outcome.reason})` : ''}: ${b.outcome.text}`);
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

async function logCommand(args: string[]): Promise<number> {
  const { values, positionals } = opts(args);
  if (positionals[0] !== 'reopen' || positionals.length !== 1) {
    process.stderr.write('tollgate log: the only subcommand is "reopen"\n');
    return 2;
  }
  try {
    const r = await adminCall(values.config as string | undefined, 'POST', '/api/log/reopen');
    if (r.status !== 200) return failure(r);
    process.stdout.write(r.body.reopened ? 'access log reopened\n' : 'the access log is not a file; nothing to reopen\n');
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

async function activate(args: string[]): Promise<number> {
  const { values } = opts(args);
  try {
    const r = await adminCall(values.config as string | undefined, 'POST', '/admin/activate');
    const b = r.body as { ok: boolean; version?: number; warnings?: string[]; errors?: string[] };
    if (b.ok) {
      process.stdout.write(`activated config version ${b.version}\n${(b.warnings ?? []).map((w) => `warning: ${w}\n`).join('')}`);
      return 0;
    }
    if (b.errors) {
      process.stderr.write(`activation failed; the previous config keeps running:\n${b.errors.map((e) => `  ${e}\n`).join('')}`);
      return 1;
    }
    return failure(r);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

async function scimToken(args: string[]): Promise<number> {
  const { values } = opts(args, { idp: { type: 'string' } });
  if (typeof values.idp !== 'string') {
    process.stderr.write('tollgate scim token: --idp ID is required\n');
    return 2;
  }
  try {
    const r = await adminCall(values.config as string | undefined, 'POST', `/admin/scim/token?idp=${encodeURIComponent(values.idp)}`);
    if (r.status !== 200) return failure(r);
    // The token goes to stdout only; it is shown once and never logged.
    process.stdout.write(`SCIM base URL:  ${String(r.body.baseUrl)}\nTenant (Okta "Zscaler ID"): ${String(r.body.tenant)}\nBearer token:   ${String(r.body.token)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

async function reauth(args: string[]): Promise<number> {
  const { values } = opts(args, { user: { type: 'string' } });
  const user = typeof values.user === 'string' ? values.user : '';
  try {
    const r = await adminCall(values.config as string | undefined, 'POST', `/admin/reauth${user ? `?user=${encodeURIComponent(user)}` : ''}`);
    if (r.status !== 200) return failure(r);
    process.stdout.write(`${user ? `user ${user}` : 'everyone'}: ${String(r.body.revoked)} session(s) ended; the next page load signs in again\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

async function listDirectory(kind: 'users' | 'groups', args: string[]): Promise<number> {
  const { values } = opts(args, { idp: { type: 'string' }, json: { type: 'boolean' } });
  if (typeof values.idp !== 'string') {
    process.stderr.write(`tollgate ${kind}: --idp ID is required\n`);
    return 2;
  }
  try {
    const r = await adminCall(values.config as string | undefined, 'GET', `/admin/${kind}?idp=${encodeURIComponent(values.idp)}&limit=1000`);
    if (r.status !== 200) return failure(r);
    if (values.json) {
      process.stdout.write(JSON.stringify(r.body, null, 2) + '\n');
      return 0;
    }
    const rows = (r.body[kind] as Record<string, unknown>[]) ?? [];
    process.stdout.write(`${rows.length} of ${String(r.body.total)} ${kind} (IdP ${values.idp})\n`);
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tollgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
