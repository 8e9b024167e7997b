/**
 * command: `tollgate ca init | import | show`, the admin's handling of the inspection CA.
 *
 * The CA's place comes from the config's `inspection.caCert` / `inspection.caKey` (relative to the
 * config file's folder), or `certs/ca/` under the current folder without --config. A running
 * Tollgate picks up a new CA at its next activation.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { CA_KEY_TYPES, CA_VALIDITY_DAYS, CaError, checkCa, createCa, describeCa, loadCa, writeCa, type CaKeyType, type CaPaths } from './ca.js';

const HELP = `Usage: tollgate ca <init|import|show> [options]

  ca init [--key ${CA_KEY_TYPES.join('|')}] [--name CN] [--permit DOMAIN]... [--days N] [--force] [--config FILE]
        Create Tollgate's root CA for TLS inspection (default RSA 2048, ${CA_VALIDITY_DAYS} days).
        --permit adds a name constraint: clients accept its leaves only for DOMAIN and its subdomains.
  ca import CERT KEY [--force] [--config FILE]
        Use your own (intermediate) CA: CERT is its PEM certificate, optionally followed by its
        issuers; KEY its unencrypted private key. Checked first: a CA, valid now, and the key's own.
  ca show [--config FILE]
        Print the CA's subject, fingerprints, expiry and the file users install.

The CA lives where the config's inspection.caCert and inspection.caKey say (default certs/ca/ca.crt
and certs/ca/ca.key); the key is written mode 0600 and must never be committed. Activate or restart
Tollgate to use a new CA.
`;

/** Largest certificate or key file read. */
const MAX_FILE_BYTES = 1024 * 1024;

/** caCommand runs one `tollgate ca` subcommand and returns the exit code. */
export async function caCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let args: ReturnType<typeof parse>;
  try {
    args = parse(rest);
  } catch (err) {
    process.stderr.write(`tollgate ca: ${(err as Error).message}\n`);
    return 2;
  }
  if (sub === undefined || sub === 'help' || sub === '--help' || args.values.help) {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  try {
    const { paths, cloud } = await where(args.values.config);
    switch (sub) {
      case 'init':
        return await init(paths, cloud, args);
      case 'import':
        return await importCa(paths, cloud, args);
      case 'show': {
        process.stdout.write(describeCa(await loadCa(paths), paths.cert, cloud));
        return 0;
      }
      default:
        process.stderr.write(`tollgate ca: unknown subcommand "${sub}"\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof CaError || err instanceof ConfigError) {
      process.stderr.write(`tollgate ca ${sub}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      key: { type: 'string' },
      name: { type: 'string' },
      permit: { type: 'string', multiple: true },
      days: { type: 'string' },
      force: { type: 'boolean' },
    },
  });
}

/** where finds the CA's files and the cloud name from the config (or the defaults). */
async function where(configFile: string | undefined): Promise<{ paths: CaPaths; cloud: string }> {
  const config = await loadConfig(configFile);
  const base = configFile !== undefined ? dirname(resolve(configFile)) : process.cwd();
  const full = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  return { paths: { cert: full(config.inspection.caCert), key: full(config.inspection.caKey) }, cloud: config.cloud.toLowerCase() };
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

async function init(paths: CaPaths, cloud: string, args: ReturnType<typeof parse>): Promise<number> {
  const v = args.values;
  const keyType = (v.key ?? 'rsa2048') as CaKeyType;
  if (!CA_KEY_TYPES.includes(keyType)) return usage(`--key must be one of ${CA_KEY_TYPES.join(', ')}`);
  const days = v.days === undefined ? CA_VALIDITY_DAYS : Number(v.days);
  if (!Number.isInteger(days) || days < 1 || days > 20 * 365) return usage('--days must be a whole number of days, at most 7300');
  const permit = (v.permit ?? []).map((d) => d.replace(/^\./, ''));
  const badDomain = permit.find((d) => !DOMAIN.test(d));
  if (badDomain !== undefined) return usage(`--permit "${badDomain}" is not a domain`);
  if (v.name !== undefined && (v.name.length === 0 || v.name.length > 64)) return usage('--name must be 1-64 characters');
  const ca = createCa({ keyType, validityDays: days, permittedDomains: permit, ...(v.name !== undefined ? { commonName: v.name } : {}) });
  await writeCa(paths, ca.certPem, ca.keyPem, { force: v.force === true });
  process.stdout.write(`Created a CA: key ${paths.key} (mode 0600, keep it secret), certificate ${paths.cert}\n\n`);
  process.stdout.write(describeCa(checkCa(ca.certPem, ca.keyPem), paths.cert, cloud));
  return 0;
}

async function importCa(paths: CaPaths, cloud: string, args: ReturnType<typeof parse>): Promise<number> {
  const [certFile, keyFile] = args.positionals;
  if (certFile === undefined || keyFile === undefined || args.positionals.length > 2) return usage('ca import takes CERT and KEY');
  const [certText, keyText] = await Promise.all([readSmall(certFile), readSmall(keyFile)]);
  const ca = checkCa(certText, keyText, new Date(), certFile);
  // The whole chain as given goes in: leaves are sent with the intermediates after them.
  const pems = certText.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
  await writeCa(paths, pems.map((p) => `${p}\n`).join(''), ca.key, { force: args.values.force === true });
  process.stdout.write(`Imported the CA: key ${paths.key} (mode 0600, keep it secret), certificate ${paths.cert}\n\n`);
  process.stdout.write(describeCa(ca, paths.cert, cloud));
  return 0;
}

async function readSmall(path: string): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new CaError('CA_UNREADABLE', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (buf.length > MAX_FILE_BYTES) throw new CaError('CA_UNREADABLE', `${path} is larger than ${MAX_FILE_BYTES} bytes`);
  return buf.toString('utf8');
}

function usage(message: string): number {
  process.stderr.write(`tollgate ca: ${message}\n`);
  return 2;
}
