/**
 * parse: a config document's text (YAML, a superset of JSON) as plain data, not yet validated.
 * This is the module that loads the YAML library; a serving process reaches it through load.ts's
 * parseApart, which runs it in the sidecar.
 */
import { parseDocument } from 'yaml';
import { ConfigError } from './error.js';

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
