/**
 * standalone: the lab IdP as a long-running service, `tollgate lab-idp`. NOT FOR PRODUCTION.
 *
 *   tollgate lab-idp --users FILE --keys DIR --listen HOST:PORT
 *     -> loadLabUsers(FILE) -> ensureLabKeys(DIR) -> startLabIdp
 *     -> prints what an admin copies from Okta (SSO URL, issuer, certificate) and an `idps:` snippet
 *     -> SIGINT, SIGTERM or an AbortSignal -> close -> exit 0
 *
 * The signing pair is kept in DIR (keys.ts), so the certificate pasted into Tollgate's config stays
 * valid across restarts; when it has to be replaced, the output says so and why.
 */
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { defaultAcsUrl, spEntityId } from '../auth/saml.js';
import { parseHostPort } from '../config/ip.js';
import { LAB_IDP_BANNER, startLabIdp, type LabIdp } from './idp.js';
import { ensureLabKeys, type LabKeys } from './keys.js';
import { LabUsersError, loadLabUsers, type LabUser } from './users.js';

export { CERT_FILE, KEY_FILE, ensureLabKeys, type LabKeys } from './keys.js';

/** StandaloneLabIdpOptions configures the long-running lab IdP for one SP. */
export interface StandaloneLabIdpOptions {
  readonly host: string;
  /** port 0 picks a free one. */
  readonly port: number;
  readonly usersFile: string;
  readonly keyDir: string;
  readonly spEntityId: string;
  readonly acsUrl: string;
  /** log hears key replacements and one line per login. */
  readonly log?: (line: string) => void;
}

/** StandaloneLabIdp is a running standalone lab IdP. */
export interface StandaloneLabIdp {
  readonly idp: LabIdp;
  readonly ssoUrl: string;
  readonly entityId: string;
  readonly certPem: string;
  readonly certPath: string;
  readonly users: readonly LabUser[];
  readonly keys: LabKeys;
  close(): Promise<void>;
}

/**
 * startStandaloneLabIdp loads the users (throwing LabUsersError for a file that cannot be used),
 * takes the signing pair from keyDir and starts the IdP.
 */
export async function startStandaloneLabIdp(opts: StandaloneLabIdpOptions): Promise<StandaloneLabIdp> {
  const log = opts.log ?? (() => {});
  const users = await loadLabUsers(opts.usersFile);
  if (users.length === 0) throw new LabUsersError('LAB_USERS_INVALID', `${opts.usersFile}: no users`);
  const keys = await ensureLabKeys(opts.keyDir);
  if (keys.replaced) log(`${LAB_IDP_BANNER}: replaced the signing key and certificate ${keys.certPath}: ${keys.reason}`);
  else if (keys.created) log(`${LAB_IDP_BANNER}: new signing key and certificate ${keys.certPath}`);
  const idp = await startLabIdp({
    host: opts.host, port: opts.port, users, spEntityId: opts.spEntityId, acsUrl: opts.acsUrl,
    keyPem: keys.keyPem, certPem: keys.certPem, log,
  });
  return { idp, ssoUrl: idp.ssoUrl, entityId: idp.entityId, certPem: keys.certPem, certPath: keys.certPath, users, keys, close: () => idp.close() };
}

/** LabIdpArgs is `tollgate lab-idp`'s command line, checked. */
export interface LabIdpArgs {
  readonly help: boolean;
  readonly host: string;
  readonly port: number;
  readonly usersFile: string;
  readonly keyDir: string;
  readonly cloud: string;
  /** orgId is set with --org-specific: the SP entity ID then ends in /<orgId>. */
  readonly orgId: string | null;
  readonly spEntityId: string;
  readonly acsUrl: string;
}

/** LAB_IDP_HELP is the text of `tollgate lab-idp --help`. */
export const LAB_IDP_HELP = `Usage: tollgate lab-idp [options]

Runs a small SAML IdP for labs and tests. NOT FOR PRODUCTION: passwords sit in a plain file and
there is no lockout, MFA or audit. It prints its SSO URL, entity ID and signing certificate, and an
idps: entry for Tollgate's config.

Options:
  --listen HOST:PORT      Address to listen on (default 127.0.0.1:9402; port 0 picks a free one).
  --users FILE            Users, JSON or YAML (default examples/lab-users.yaml).
  --keys DIR              Where the signing key and certificate are kept across restarts
                          (default ./data/lab-idp).
  --cloud NAME            Tollgate's cloud name (default tollgate.test): the SP is login.NAME.
  --org-specific ORGID    Sign for the org-specific SP entity ID https://login.NAME/sfc_sso/ORGID.
  --help                  This text.
`;

/** parseLabIdpArgs checks the command line; a string is the (one-line) problem. */
export function parseLabIdpArgs(argv: readonly string[]): LabIdpArgs | string {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        listen: { type: 'string', default: '127.0.0.1:9402' },
        users: { type: 'string', default: 'examples/lab-users.yaml' },
        keys: { type: 'string', default: './data/lab-idp' },
        cloud: { type: 'string', default: 'tollgate.test' },
        'org-specific': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes and a one-line message for the user.
    return (err as Error).message;
  }
  const listen = String(values.listen);
  const hp = parseHostPort(listen);
  if (hp === null) return `--listen must be HOST:PORT or [IPv6]:PORT with a port from 0 to 65535, got "${listen}"`;
  const cloud = String(values.cloud).toLowerCase();
  if (!isHostName(cloud)) return `--cloud must be a host name such as tollgate.test, got "${String(values.cloud)}"`;
  const org = values['org-specific'];
  const orgId = typeof org === 'string' ? org : null;
  // The same rule as the config's orgId.
  if (orgId !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(orgId)) return `--org-specific must be 1-64 letters, digits, _ or -, got "${orgId}"`;
  for (const name of ['users', 'keys'] as const) if (String(values[name]) === '') return `--${name} must not be empty`;
  return {
    help: values.help === true,
    host: hp.host,
    port: hp.port,
    usersFile: String(values.users),
    keyDir: String(values.keys),
    cloud,
    orgId,
    spEntityId: spEntityId(cloud, orgId ?? '', orgId !== null),
    acsUrl: defaultAcsUrl(cloud),
  };
}

/** isHostName lets the WHATWG URL parser judge: a host name comes back from it unchanged. */
function isHostName(name: string): boolean {
  try {
    return /^[a-z0-9.-]+$/.test(name) && new URL(`http://login.${name}/`).hostname === `login.${name}`;
  } catch {
    // Not parseable as a URL host (for instance, one that ends like an IPv4 address).
    return false;
  }
}

/** LabIdpCommandOptions lets a caller (a test, the embedded default config) stop the command. */
export interface LabIdpCommandOptions {
  /** signal stops the IdP as SIGINT does. */
  readonly signal?: AbortSignal;
  /** err hears the one-line error; default console.error. */
  readonly err?: (s: string) => void;
}

/**
 * labIdpCommand runs `tollgate lab-idp` until SIGINT, SIGTERM or signal: exit 0 after a clean
 * close, 2 for bad arguments or a users file that cannot be used, 1 when it cannot start otherwise.
 */
export async function labIdpCommand(argv: string[], out: (s: string) => void = console.log, options: LabIdpCommandOptions = {}): Promise<number> {
  const err = options.err ?? console.error;
  const args = parseLabIdpArgs(argv);
  if (typeof args === 'string') {
    err(`tollgate lab-idp: ${args} (see --help)`);
    return 2;
  }
  if (args.help) {
    out(LAB_IDP_HELP);
    return 0;
  }
  let running: StandaloneLabIdp;
  try {
    running = await startStandaloneLabIdp({ ...args, log: out });
  } catch (e) {
    if (e instanceof LabUsersError) {
      err(`tollgate lab-idp: ${e.message}`);
      return 2;
    }
    // Listen failures (EADDRINUSE, EACCES) and an unwritable keys folder: Node's messages are one line.
    err(`tollgate lab-idp: cannot start: ${(e as Error).message.split('\n', 1)[0]}`);
    return 1;
  }
  for (const line of describeLabIdp(running, args)) out(line);
  const why = await stopped(options.signal);
  out(`${LAB_IDP_BANNER}: ${why}, stopping`);
  await running.close();
  return 0;
}

/** stopped resolves with the name of the first of SIGINT, SIGTERM or an abort, then forgets them all. */
function stopped(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((done) => {
    const finish = (why: string): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signal?.removeEventListener('abort', onAbort);
      done(why);
    };
    const onSignal = (s: NodeJS.Signals): void => finish(s);
    const onAbort = (): void => finish('stop requested');
    if (signal?.aborted) return finish('stop requested');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * describeLabIdp is what the command prints on start: the values an admin would copy from Okta's
 * "View SAML setup instructions", the users (never their passwords) and an `idps:` entry.
 */
export function describeLabIdp(r: Pick<StandaloneLabIdp, 'ssoUrl' | 'entityId' | 'certPem' | 'certPath' | 'users' | 'keys'>, args: Pick<LabIdpArgs, 'usersFile' | 'cloud' | 'orgId' | 'spEntityId' | 'acsUrl' | 'host'>): string[] {
  const rule = '='.repeat(78);
  const snippet = toYaml({
    idps: [{
      id: 'lab',
      name: 'Lab IdP (NOT FOR PRODUCTION)',
      ssoUrl: r.ssoUrl,
      certificate: r.certPath,
      entityId: r.entityId,
      ...(args.orgId !== null ? { orgSpecificEntityId: true } : {}),
      default: true,
      provisioning: 'jit',
    }],
  }).trimEnd();
  const wildcard = args.host === '0.0.0.0' || args.host === '::';
  return [
    rule,
    `  ${LAB_IDP_BANNER}`,
    '  A test identity provider: passwords sit in a plain file, and there is no lockout,',
    '  MFA or audit. Never use it for real accounts or let it face the internet.',
    rule,
    'As Okta shows them in "View SAML setup instructions":',
    `  SSO URL (Identity Provider Single Sign-On URL):  ${r.ssoUrl}`,
    ...(wildcard ? [`    (listening on all interfaces: put this machine's address in place of ${args.host} for browsers)`] : []),
    `  IdP entity ID (Identity Provider Issuer):        ${r.entityId}`,
    `  Certificate (X.509 Certificate):                 ${r.certPath}`,
    !r.keys.created
      ? '    (kept from the last run)'
      : r.keys.replaced
        ? `    REPLACED: ${r.keys.reason}. Paste the new certificate wherever the old one was.`
        : '    (new)',
    ...r.certPem.trimEnd().split('\n'),
    `Signs for the SP ${args.spEntityId} (Audience), posting to ${args.acsUrl} (ACS).`,
    `Users from ${args.usersFile} (their passwords are in that file):`,
    ...r.users.map((u) => `  ${u.loginName}  ${[u.displayName, u.department].filter(Boolean).join(', ')}${u.groups.length ? `  groups: ${u.groups.join(', ')}` : ''}`),
    `For a Tollgate config with cloud: ${args.cloud}${args.orgId !== null ? ` and orgId: ${args.orgId}` : ''}, ready to paste:`,
    snippet,
    rule,
    `Running. Ctrl-C or SIGTERM stops it.`,
  ];
}
