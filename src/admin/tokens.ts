/**
 * tokens: the admin API's bearer tokens (RFC 6750), stored hashed as the SCIM tokens are.
 *
 *   tollgate admin token --name ops -> AdminTokens.generate("ops") -> Store keeps SHA-256 only
 *                                   -> token file (mode 0600, beside the data directory)
 *   CLI / script "Authorization: Bearer tga.ops.<secret>" -> AdminTokens.verify -> "ops" (the audit's who)
 *
 * A token names its holder: `tga.<name>.<secret>`. The name picks the stored digest and is what the
 * audit log records; the secret is 32 random bytes. Generating a token for a name replaces that
 * name's previous token at once (rotation); other names keep theirs.
 *
 * Possession of the store (the data directory, or the Redis credentials) is what lets an operator
 * create a token: the CLI writes it straight into the store, so no network call has to be trusted
 * before the first token exists.
 */
import { closeSync, fchmodSync, fstatSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { BearerTokens, TOKEN_BYTES } from '../scim/tokens.js';
import type { Store } from '../sessions/store.js';

/** ADMIN_TOKEN_NAME_RE is what a token's name may be: it ends up in every audit line, so it stays plain. */
export const ADMIN_TOKEN_NAME_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** DEFAULT_ADMIN_TOKEN_NAME names the token `tollgate admin token` makes without --name. */
export const DEFAULT_ADMIN_TOKEN_NAME = 'admin';

const PREFIX = 'tga.';
const SECRET_RE = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((TOKEN_BYTES * 4) / 3)}}$`);

/** AdminTokens generates, verifies and revokes named admin tokens. */
export class AdminTokens {
  private readonly tokens: BearerTokens;

  constructor(store: Store, now: () => number = Date.now) {
    this.tokens = new BearerTokens(store, 'admin:token:', now);
  }

  /** generate makes a new token for `name`, replacing that name's old one; returns it (shown once). */
  async generate(name: string): Promise<string> {
    if (!ADMIN_TOKEN_NAME_RE.test(name)) throw new Error(`admin token name "${name.slice(0, 64)}" must be 1-32 lower-case letters, digits or - (starting with a letter or digit)`);
    return `${PREFIX}${name}.${await this.tokens.generate(name)}`;
  }

  /** verify returns the name of the token presented, or null when it is not a current admin token. */
  async verify(presented: string): Promise<string | null> {
    const parsed = parseAdminToken(presented);
    if (parsed === null) return null;
    return (await this.tokens.verify(parsed.name, parsed.secret)) ? parsed.name : null;
  }

  /** revoke removes a name's token; the admin API refuses it on every node within a second. */
  revoke(name: string): Promise<void> {
    return this.tokens.revoke(name);
  }
}

/** parseAdminToken splits `tga.<name>.<secret>`; null for anything else. */
export function parseAdminToken(token: string): { name: string; secret: string } | null {
  if (!token.startsWith(PREFIX) || token.length > 128) return null;
  const dot = token.indexOf('.', PREFIX.length);
  if (dot < 0) return null;
  const name = token.slice(PREFIX.length, dot);
  const secret = token.slice(dot + 1);
  return ADMIN_TOKEN_NAME_RE.test(name) && SECRET_RE.test(secret) ? { name, secret } : null;
}

/**
 * adminTokenFile is where the CLI keeps its admin token: `admin.tokenFile` when set, else beside the
 * embedded store's data directory (`./data` -> `./data.admin-token`), else `./tollgate.admin-token`.
 * Relative paths are taken from the working directory, as the store's path is.
 */
export function adminTokenFile(config: Pick<Config, 'admin' | 'store'>): string {
  if (config.admin.tokenFile !== undefined) return resolve(config.admin.tokenFile);
  if (config.store.type === 'embedded') {
    const data = resolve(config.store.path);
    return join(dirname(data), `${basename(data)}.admin-token`);
  }
  return resolve('tollgate.admin-token');
}

/**
 * writeTokenFile writes the token to `file` with mode 0600: into a new file created 0600 (never
 * wider, whatever the umask) and renamed over the old one, so no reader ever sees a half-written or
 * world-readable token.
 */
export function writeTokenFile(file: string, token: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, `${token}\n`);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
}

/** TokenFileError says why the token file cannot be used, with what to do about it. */
export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

/**
 * readTokenFile reads the CLI's admin token. As ssh does with a private key, it refuses a file that
 * other users can read or write: the token opens the whole admin API.
 */
export function readTokenFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TokenFileError(`no admin token at ${file}: create one with "tollgate admin token" (same --config)`);
    }
    throw new TokenFileError(`cannot read the admin token at ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new TokenFileError(`the admin token at ${file} is open to other users (mode ${mode.toString(8).padStart(4, '0')}): run "chmod 600 ${file}"`);
    }
    return readFileSync(fd, 'utf8').trim();
  } finally {
    closeSync(fd);
  }
}
