/**
 * load: reads a config file (YAML or JSON), validates it, and returns a deep-frozen Config or every
 * error at once, each with its file, path and reason.
 *
 * Parsing and validation run in the sidecar (parseApart, validateApart), so this module, and
 * everything that only reads files or reports a ConfigError, stays clear of the YAML library, the
 * schema and zod; parse.ts and validate.ts do the same work in-process, for tools and tests.
 */
import { readFile } from 'node:fs/promises';
import { runApart } from '../sidecar/sidecar.js';
import { ConfigError } from './error.js';
import type { Config, ConfigInput } from './schema.js';

export { ConfigError };

/** Largest config file accepted; a config is a few KB, so anything huge is a mistake. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * DEFAULT_CONFIG is what runs with no file: loopback listeners, embedded store, one `local` location
 * that requires sign-in, and the lab IdP (NOT FOR PRODUCTION) as its identity provider, so a fresh
 * checkout shows the whole flow. The IP surrogate lets https tunnels follow a browser's sign-in.
 */
export const DEFAULT_CONFIG: ConfigInput = {
  locations: [{ name: 'local', ips: ['127.0.0.0/8', '::1/128'], enforceAuthentication: true, surrogate: { enabled: true } }],
  labIdp: { enabled: true },
};

/**
 * validateApart validates parsed data in the sidecar and answers with the frozen Config, or throws
 * the ConfigError listing every problem, as validate.ts's validateConfig does in this process.
 */
export async function validateApart(data: unknown, source = 'config'): Promise<Config> {
  return deepFreeze(await runApart('config', { data, source }));
}

/** parseApart parses a document's text in the sidecar: plain data, or a ConfigError for its syntax. */
export function parseApart(text: string, source: string): Promise<unknown> {
  return runApart('parse', { text, source });
}

/** configApart parses and validates a document's text in the sidecar, in one round trip. */
export async function configApart(text: string, source: string): Promise<Config> {
  return deepFreeze(await runApart('configText', { text, source }));
}

/** loadConfig reads and validates a file; with no path it returns the embedded default. */
export async function loadConfig(path: string | undefined): Promise<Config> {
  if (path === undefined) return validateApart(DEFAULT_CONFIG, '(default config)');
  return configApart(await readConfigText(path), path);
}

/** readConfigText reads a config file's text, bounded; a failure is a ConfigError naming the file. */
export async function readConfigText(path: string): Promise<string> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_CONFIG_BYTES) throw new ConfigError(path, [`file is larger than ${MAX_CONFIG_BYTES} bytes`]);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(path, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return text;
}

/** deepFreeze freezes an object and everything it holds. */
export function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
