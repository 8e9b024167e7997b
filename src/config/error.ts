/**
 * error: the one error a config can fail with, kept apart from the schema so that what reports a
 * config problem does not load the validator.
 */

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
