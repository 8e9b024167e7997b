/**
 * client: the CLI's side of the admin API: where the running node is, which token to present, and
 * `tollgate admin token`, which creates that token.
 *
 *   tollgate admin token --config FILE -> opens FILE's store -> AdminTokens.generate -> token file (0600)
 *   tollgate users --config FILE       -> token file (or TOLLGATE_ADMIN_TOKEN) -> Authorization: Bearer -> control listener
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { listenerAddresses } from '../runtime.js';
import { openStore } from '../sessions/open.js';
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
export async function adminCall(configFile: string | undefined, method: string, path: string): Promise<AdminReply> {
  const config = await loadConfig(configFile);
  const token = presentedToken(config);
  const { host, port } = controlAddress(config);
  return new Promise((resolve, reject) => {
    // Ask for JSON: the control app renders errors as plain text otherwise, and `failure` reads `error.code`.
    const headers = { accept: 'application/json', authorization: `Bearer ${token}` };
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
    req.end();
  });
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

