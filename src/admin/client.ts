/**
 * client: the CLI's side of the admin API: where the running node is, which token to present, and
 * `tollgate admin token`, which creates that token.
 *
 *   tollgate admin token --config FILE -> opens FILE's store -> AdminTokens.generate -> token file (0600)
 *   tollgate users --config FILE       -> token file (or TOLLGATE_ADMIN_TOKEN) -> Authorization: Bearer -> control listener
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { listenerAddresses } from '../runtime.js';
import { openStore } from '../sessions/open.js';
import { checkImportOptions, idpEntry, MetadataError, readIdpMetadata, writeCertificates } from './idpimport.js';
import { adminTokenFile, AdminTokens, DEFAULT_ADMIN_TOKEN_NAME, readTokenFile, writeTokenFile } from './tokens.js';

/** AdminReply is one admin API answer, parsed. */
export interface AdminReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** controlAddress is where the config's control listener answers (a wildcard bind is reached on loopback). */
function controlAddress(c: Config): { host: string; port: number } {
  const a = listenerAddresses(c).control;
  return { host: a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host, port: a.port };
}

/** presentedToken is TOLLGATE_ADMIN_TOKEN when set (scripts, containers), else the token file's. */
function presentedToken(c: Config): string {
  const env = process.env.TOLLGATE_ADMIN_TOKEN;
  return env !== undefined && env !== '' ? env.trim() : readTokenFile(adminTokenFile(c));
}

/**
 * adminCall sends one admin API request with the admin token and parses its JSON answer. It rejects
 * with a message fit for the terminal when the token or the node cannot be reached.
 */
export async function adminCall(configFile: string | undefined, method: string, path: string, body?: unknown): Promise<AdminReply> {
  const config = await loadConfig(configFile);
  const token = presentedToken(config);
  const { host, port } = controlAddress(config);
  return new Promise((resolve, reject) => {
    // Ask for JSON: the control app renders errors as plain text otherwise, and `failure` reads `error.code`.
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { accept: 'application/json', authorization: `Bearer ${token}`, ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}) };
    const req = request({ host, port, method, path, headers, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 16 << 20) body += c;
      });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> });
        } catch {
          reject(new Error(`unexpected answer (${res.statusCode}): ${body.slice(0, 500)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new Error(`cannot reach Tollgate's control listener at ${host}:${port}: ${err.message}`)));
    req.end(payload);
  });
}

const IDP_HELP = `Usage: tollgate idp import --metadata FILE --id ID [--domains a.com,b.com] [--name NAME]
                           [--certs DIR] [--stage] [--config FILE]

Read an IdP's SAML metadata (Okta, Entra ID, any SAML 2.0 IdP): its entity ID, the SSO URL of the
HTTP-Redirect binding, every signing certificate (two during a key rollover) and its NameID formats.
It writes the certificates to DIR/ID.pem (default ./certs) and prints the "idps:" entry to paste.
With --stage the running node does it instead: the certificates go to certs/ beside its config file
and the entry is staged in the draft (see GET /api/config/diff, then POST /api/activate).
`;

/** idpCommand runs `tollgate idp import ...`. */
export async function idpCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      metadata: { type: 'string' },
      id: { type: 'string' },
      domains: { type: 'string' },
      name: { type: 'string' },
      certs: { type: 'string' },
      stage: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(IDP_HELP);
    return 0;
  }
  if (positionals[0] !== 'import' || positionals.length !== 1 || values.metadata === undefined || values.id === undefined) {
    process.stderr.write(`tollgate idp: import needs --metadata FILE and --id ID\n\n${IDP_HELP}`);
    return 2;
  }
  const domains = values.domains === undefined ? [] : values.domains.split(',').map((d) => d.trim()).filter((d) => d !== '');
  try {
    const opts = checkImportOptions(values.id, domains, values.name);
    const xml = readFileSync(values.metadata, 'utf8');
    if (values.stage) {
      const r = await adminCall(values.config, 'POST', '/api/idps/import', { ...opts, metadata: xml });
      if (r.status !== 200) return failure(r);
      const errors = (r.body.errors as string[]) ?? [];
      process.stdout.write(`staged IdP "${opts.id}" in the draft${errors.length > 0 ? `; activation would refuse it as it stands:\n${errors.map((e) => `  ${e}\n`).join('')}` : '; activate it with POST /api/activate\n'}`);
      return 0;
    }
    const meta = readIdpMetadata(xml);
    const file = writeCertificates(values.certs ?? 'certs', opts.id, meta);
    const lines = meta.certificates.map((c) => `# signing certificate: ${c.subject}, expires ${c.notAfter.toISOString()}, SHA-256 ${c.fingerprintSha256}`);
    lines.push(`# NameID formats: ${meta.nameIdFormats.join(', ') || '(none listed)'}`);
    const { stringify } = await import('yaml');
    process.stdout.write(`${lines.join('\n')}\n${stringify({ idps: [idpEntry(meta, opts, file)] })}`);
    process.stderr.write(`wrote ${meta.certificates.length} certificate(s) to ${file}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`tollgate idp import: ${err instanceof MetadataError ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
}

/** failure prints an admin API error body. */
export function failure(r: AdminReply): number {
  const e = r.body.error as { message?: string; code?: string } | undefined;
  process.stderr.write(`failed (${r.status}${e?.code ? `, ${e.code}` : ''}): ${e?.message ?? JSON.stringify(r.body)}\n`);
  return 1;
}

const ADMIN_HELP = `Usage: tollgate admin token [--name NAME] [--config FILE] [--print]

Create the admin API token NAME (default "${DEFAULT_ADMIN_TOKEN_NAME}") in FILE's store, replacing NAME's
previous token on every node, and write it, mode 0600, to the token file the CLI reads: admin.tokenFile,
or beside the embedded store's data directory (./data -> ./data.admin-token). With --print the token
goes to stdout instead (for a script or another machine) and the file is left alone. Needs access to the
store (its data directory, or Redis); the other commands present the file's token, or TOLLGATE_ADMIN_TOKEN.
`;

/** adminCommand runs `tollgate admin ...`. */
export async function adminCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, name: { type: 'string' }, print: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(ADMIN_HELP);
    return 0;
  }
  if (positionals[0] !== 'token' || positionals.length !== 1) {
    process.stderr.write(`tollgate admin: the only subcommand is "token"\n\n${ADMIN_HELP}`);
    return 2;
  }
  const name = values.name ?? DEFAULT_ADMIN_TOKEN_NAME;
  let config: Config;
  try {
    config = await loadConfig(values.config);
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).message}\n`);
    return 1;
  }
  const file = adminTokenFile(config);
  let store;
  try {
    store = await openStore(config.store, { connectTimeoutMs: 5_000 });
  } catch (err) {
    process.stderr.write(`tollgate admin token: cannot open the store (${config.store.type}): ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const token = await new AdminTokens(store).generate(name);
    if (values.print) {
      // For a script or another machine: the token goes to stdout only, and this CLI's file stays as it was.
      process.stdout.write(`${token}\n`);
      process.stderr.write(`admin token "${name}" created; its previous token no longer works\n`);
    } else {
      writeTokenFile(file, token);
      process.stderr.write(`admin token "${name}" written to ${file} (mode 0600); its previous token no longer works\n`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`tollgate admin token: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

