#!/usr/bin/env node
/**
 * cli: the `tollgate` command.
 *
 *   tollgate start [--config FILE]        run the proxy and control listeners
 *   tollgate check-config FILE            validate a config and print every error
 *   tollgate activate [--config FILE]     ask the running instance to re-read and activate its config
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config/load.js';
import { listenerAddresses } from './runtime.js';

const HELP = `Usage: tollgate <command> [options]

Commands:
  start [--config FILE]         Start Tollgate. Without --config it runs the built-in default:
                                proxy 127.0.0.1:9400, control 127.0.0.1:9401, embedded store in ./data,
                                one location "local" covering loopback.
  check-config FILE             Validate FILE (YAML or JSON); print every error; exit 1 if any.
  activate [--config FILE]      Tell the running Tollgate (found through FILE's control listener,
                                or 127.0.0.1:9401) to re-read its config and activate it.
                                SIGHUP does the same.
  --help                        This text.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return cmd === undefined ? 2 : 0;
  }
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'activate':
      return activate(rest);
    default:
      process.stderr.write(`tollgate: unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

function opts(args: string[], extra: Record<string, { type: 'string' | 'boolean' }> = {}) {
  return parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, ...extra }, allowPositionals: true });
}

async function start(args: string[]): Promise<number> {
  const { values } = opts(args);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const { startTollgate } = await import('./main.js');
  let tg;
  try {
    tg = await startTollgate(values.config !== undefined ? { configPath: String(values.config) } : {});
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `tollgate: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  process.on('SIGHUP', () => void tg.activate());
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      tg.log.info({ signal }, 'signal received');
      tg.shutdown().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function checkConfig(args: string[]): Promise<number> {
  const { values, positionals } = opts(args);
  const file = positionals[0] ?? (values.config as string | undefined);
  if (file === undefined) {
    process.stderr.write('tollgate check-config: name the config file\n');
    return 2;
  }
  try {
    const c = await loadConfig(file);
    process.stdout.write(`${file}: ok (${c.locations.length} location${c.locations.length === 1 ? '' : 's'}, store ${c.store.type}, cloud ${c.cloud})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).message}\n`);
    return 1;
  }
}

async function activate(args: string[]): Promise<number> {
  const { values } = opts(args);
  let host = '127.0.0.1';
  let port = 9401;
  if (values.config !== undefined) {
    try {
      const c = listenerAddresses(await loadConfig(String(values.config))).control;
      host = c.host === '0.0.0.0' ? '127.0.0.1' : c.host === '::' ? '::1' : c.host;
      port = c.port;
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 1;
    }
  }
  return new Promise<number>((resolve) => {
    const req = request({ host, port, method: 'POST', path: '/admin/activate', timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c.length + body.length < 1 << 20 ? c : ''));
      res.on('end', () => {
        try {
          const r = JSON.parse(body) as { ok: boolean; version?: number; warnings?: string[]; errors?: string[] };
          if (r.ok) {
            process.stdout.write(`activated config version ${r.version}\n${(r.warnings ?? []).map((w) => `warning: ${w}\n`).join('')}`);
            resolve(0);
          } else {
            process.stderr.write(`activation failed; the previous config keeps running:\n${(r.errors ?? []).map((e) => `  ${e}\n`).join('')}`);
            resolve(1);
          }
        } catch {
          process.stderr.write(`unexpected answer (${res.statusCode}): ${body.slice(0, 500)}\n`);
          resolve(1);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => {
      process.stderr.write(`cannot reach Tollgate's control listener at ${host}:${port}: ${err.message}\n`);
      resolve(1);
    });
    req.end();
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tollgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
