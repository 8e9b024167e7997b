/**
 * command: `tollgate pac test` and `tollgate pac show`, offline, on a config file (or the built-in
 * default) or on a given PAC file. Nothing here talks to a running Tollgate or to the network.
 *
 *   tollgate pac test URL [--client-ip IP] [--location NAME] [--pac FILE] [--config FILE]
 *   tollgate pac show [--location NAME] [--client-ip IP] [--config FILE]
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../config/load.js';
import { ipToBigInt, normalizeIp } from '../config/ip.js';
import type { Config } from '../config/schema.js';
import { compileLocator } from '../proxy/locate.js';
import { answerProblem, PacEvaluator, PacScriptError } from './evaluate.js';
import { explainAnswer } from './explain.js';
import { gatewaysFor, MAX_PAC_BYTES, preparePac, type PacVariant, type PacFiles } from './files.js';
import { prepareTemplate, renderTemplate } from './variables.js';

const HELP = `Usage:
  tollgate pac test URL [--client-ip IP] [--location NAME] [--pac FILE] [--config FILE]
      Ask the PAC file what it does with URL, as a browser would, and say which rule matched.
      The PAC is the one Tollgate serves to a client at IP (default 127.0.0.1) or at location
      NAME, from the config FILE (or the built-in default); --pac FILE tests that file instead,
      with its \${GATEWAY} variables filled from the config. Offline: no name is looked up.
  tollgate pac show [--location NAME] [--client-ip IP] [--config FILE]
      Print the PAC file Tollgate serves (the default one, or location NAME's).
`;

/** Output is where the command writes (the process's streams, or a test's buffers). */
export interface Output {
  readonly out: { write(s: string): unknown };
  readonly err: { write(s: string): unknown };
}

/** pacCommand runs `tollgate pac ...`; the exit code is 0, 1 on a problem, 2 on a usage error. */
export async function pacCommand(args: string[], io: Output = { out: process.stdout, err: process.stderr }): Promise<number> {
  const usage = (msg: string): number => {
    io.err.write(`tollgate pac: ${msg}\n\n${HELP}`);
    return 2;
  };
  const [sub, ...rest] = args;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, 'client-ip': { type: 'string' }, location: { type: 'string' }, pac: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (sub === undefined || sub === '--help' || sub === '-h' || values.help) {
    io.out.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'test' && sub !== 'show') return usage(`unknown subcommand "${sub}"`);
  const clientIp = normalizeIp(values['client-ip'] ?? '127.0.0.1');
  if (ipToBigInt(clientIp) === null) return usage(`--client-ip "${clientIp}" is not an IP address`);
  let config: Config;
  try {
    config = await loadConfig(values.config);
  } catch (err) {
    io.err.write(`${(err as Error).message}\n`);
    return 1;
  }
  const locName = values.location ?? compileLocator(config.locations).lookup(clientIp)?.location.name ?? null;
  if (values.location !== undefined && !config.locations.some((l) => l.name.toLowerCase() === values.location!.toLowerCase())) {
    return usage(`no location is named "${values.location}" (${config.locations.map((l) => l.name).join(', ') || 'none configured'})`);
  }
  const hosts = new Map(Object.entries(config.hosts).map(([k, v]) => [k.toLowerCase(), v]));

  // The PAC to use: a given file, or what the config's PAC set serves (built and validated as at activation).
  let text: string;
  let rules: PacVariant['rules'] = null;
  let what: string;
  if (values.pac !== undefined) {
    const g = gatewaysFor(config, locName);
    if (!('gateways' in g)) {
      io.err.write(`tollgate pac: cannot fill the gateway variables: ${g.reason}\n`);
      return 1;
    }
    let raw: Buffer;
    try {
      raw = await readFile(values.pac);
    } catch (err) {
      io.err.write(`tollgate pac: cannot read ${values.pac}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return 1;
    }
    if (raw.length > MAX_PAC_BYTES) {
      io.err.write(`tollgate pac: ${values.pac} is larger than ${MAX_PAC_BYTES / 1024} KiB\n`);
      return 1;
    }
    text = renderTemplate(prepareTemplate(raw.toString('utf8'), g.gateways), clientIp);
    what = `file ${values.pac}`;
  } else {
    let files: PacFiles;
    try {
      files = (await preparePac(config, { baseDir: values.config !== undefined ? dirname(values.config) : process.cwd(), source: values.config ?? '(default config)' })).files;
    } catch (err) {
      io.err.write(err instanceof ConfigError ? `${err.message}\n` : `tollgate pac: ${(err as Error).message}\n`);
      return 1;
    }
    const v = files.forLocation(locName);
    if (v === null) {
      io.err.write(`tollgate pac: no PAC file: ${files.unavailable}\n`);
      return 1;
    }
    text = files.text(v, clientIp);
    rules = v.rules;
    what = `${v.label} PAC (${v.source})`;
  }

  if (sub === 'show') {
    io.out.write(text.endsWith('\n') ? text : `${text}\n`);
    return 0;
  }
  const url = positionals[0];
  if (url === undefined) return usage('name the URL to test');
  try {
    new URL(url);
  } catch {
    return usage(`"${url}" is not a URL`);
  }
  let ev: PacEvaluator;
  try {
    ev = await PacEvaluator.compile(text, { clientIp, hosts });
  } catch (err) {
    if (!(err instanceof PacScriptError)) throw err;
    io.err.write(`${what}: ${err.message}\n`);
    return 1;
  }
  try {
    const a = await ev.run(url);
    const problem = answerProblem(a.result);
    io.out.write(
      `PAC:     ${what}\nclient:  ${clientIp}${locName !== null ? ` (location ${locName})` : ' (in no location)'}\nURL:     ${url}\n` +
        `answer:  ${typeof a.result === 'string' ? a.result : String(a.result)}\nrule:    ${explainAnswer(a, rules)}\n` +
        (a.extraPatterns.length > 0 ? `warning: shExpMatch was given ${a.extraPatterns[0]!.args.length - 1} patterns and tests only the first; write one shExpMatch per pattern\n` : ''),
    );
    if (problem !== null) {
      io.err.write(`problem: FindProxyForURL ${problem}\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    if (!(err instanceof PacScriptError)) throw err;
    io.err.write(`${what}: ${err.message}\n`);
    return 1;
  } finally {
    ev.dispose();
  }
}
