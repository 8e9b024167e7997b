/**
 * validate: turns parsed config data into a deep-frozen Config with the schema, or every error at
 * once, each with its path and reason.
 *
 * This is the module that loads zod. A serving process reaches it through load.ts's
 * validateApart, which runs it in the sidecar; tools and tests call it directly.
 */
import { ConfigError } from './error.js';
import { deepFreeze } from './load.js';
import { parseConfigData } from './parse.js';
import { configSchema, type Config } from './schema.js';

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

/** parseConfigText parses YAML (a superset of JSON) and validates it, in this process. */
export function parseConfigText(text: string, source: string): Config {
  return validateConfig(parseConfigData(text, source), source);
}
