/**
 * load: reads a config file (YAML or JSON), validates it, and returns a deep-frozen Config or every
 * error at once, each with its file, path and reason.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { configSchema, type Config, type ConfigInput } from './schema.js';

/** ConfigError lists every problem found in one config; `errors` are `path: reason` lines. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly source: string,
    readonly errors: readonly string[],
  ) {
    super(`${source}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n` + errors.map((e) => `  ${source}: ${e}`).join('\n'));
    this.name = 'ConfigError';
  }
}

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

/** formatPath renders a zod path as `locations[1].ips[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** validateConfig turns parsed data into a frozen Config, or throws ConfigError with every problem. */
export function validateConfig(data: unknown, source = 'config'): Config {
  const r = configSchema.safeParse(data ?? {});
  if (!r.success) {
    const errors = r.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') {
        return i.keys.map((k) => `${formatPath([...i.path, k])}: unknown key`).join('\n');
      }
      return `${formatPath(i.path)}: ${i.message}`;
    });
    throw new ConfigError(source, errors.join('\n').split('\n'));
  }
  return deepFreeze(r.data) as Config;
}

/** parseConfigText parses YAML (a superset of JSON) and validates it. */
export function parseConfigText(text: string, source: string): Config {
  return validateConfig(parseConfigData(text, source), source);
}

/** parseConfigData parses YAML (a superset of JSON) into plain data, not yet validated; syntax errors throw ConfigError. */
export function parseConfigData(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? '?'}, column ${e.linePos?.[0]?.col ?? '?'}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`),
    );
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}

/** loadConfig reads and validates a file; with no path it returns the embedded default. */
export async function loadConfig(path: string | undefined): Promise<Config> {
  if (path === undefined) return validateConfig(DEFAULT_CONFIG, '(default config)');
  return parseConfigText(await readConfigText(path), path);
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

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
