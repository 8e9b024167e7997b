/**
 * sidecar: jobs run in a child process answer as they would in this process, errors included; one
 * child serves jobs in a row and goes away when idle; a child that dies fails its jobs with how it
 * died. The child path is the built one, so src/ is transpiled to JavaScript first.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { runApart as RunApart } from '../../src/sidecar/sidecar.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/config/error.js';
import { builtSrc } from '../helpers/transpile.js';

/** children lists this process's child processes by pid (proc(5): /proc/PID/task/TID/children). */
function children(): number[] {
  const pids: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    const text = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
    if (text !== '') pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

/** sidecars are the children running sidecar/child.js (tap itself may have others). */
function sidecars(): number[] {
  return children().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join('sidecar', 'child.js'));
    } catch {
      return false; // gone between the listing and the read
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** rejection answers with what p rejects with, or null when it resolves. */
const rejection = (p: Promise<unknown>): Promise<Error | null> => p.then(
  () => null,
  (e: unknown) => e as Error,
);

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await sleep(20);
  return what();
}

const GOOD = { locations: [{ name: 'hq', ips: ['10.0.0.0/8'], enforceAuthentication: true }], connectPorts: [443, 8443], hosts: { 'intranet.example': '10.1.2.3' } };
const BAD = { locations: [{ name: 'hq', ips: ['10.0.0.0/33'] }], connectPorts: [0], nonsense: true };

t.test('the built sidecar', async (t) => {
  const out = builtSrc(t, 'sidecar');
  const { runApart } = (await import(pathToFileURL(join(out, 'sidecar', 'sidecar.js')).href)) as { runApart: typeof RunApart };
  const { ConfigError: BuiltConfigError } = (await import(pathToFileURL(join(out, 'config', 'error.js')).href)) as { ConfigError: typeof ConfigError };

  t.test('a valid config comes back as validateConfig makes it here', async (t) => {
    const apart = await runApart('config', { data: GOOD, source: 'good.yaml' });
    t.same(apart, validateConfig(GOOD, 'good.yaml'), 'the same defaults and values');
    t.ok(sidecars().length >= 1, 'it ran in a child process');
  });

  t.test('an invalid config throws the ConfigError it throws here, every line', async (t) => {
    let here: ConfigError | null = null;
    try {
      validateConfig(BAD, 'bad.yaml');
    } catch (err) {
      here = err as ConfigError;
    }
    t.ok(here instanceof ConfigError && here.errors.length >= 3, 'in this process: several errors');
    const err = await rejection(runApart('config', { data: BAD, source: 'bad.yaml' }));
    t.ok(err instanceof BuiltConfigError, 'a ConfigError, not a plain Error');
    t.equal((err as ConfigError).source, 'bad.yaml', 'naming the same source');
    t.same((err as ConfigError).errors, here!.errors, 'with the same lines, in the same order');
  });

  t.test('a document parses there as here, and a syntax error comes back as the ConfigError it is', async (t) => {
    const { parseConfigData } = await import('../../src/config/parse.js');
    const text = 'locations:\n  - { name: hq, ips: [10.0.0.0/8] } # a comment\nconnectPorts: [443]\n';
    t.same(await runApart('parse', { text, source: 'doc.yaml' }), parseConfigData(text, 'doc.yaml'), 'the same data');
    const err = await rejection(runApart('parse', { text: 'locations: [\n  { name: hq\n', source: 'broken.yaml' }));
    t.ok(err instanceof BuiltConfigError, 'a ConfigError');
    t.equal((err as ConfigError).source, 'broken.yaml');
    t.match((err as ConfigError).errors[0], /^line \d+, column \d+: /, 'saying where');
  });

  t.test('configText parses and validates in one job, as parseConfigText does here', async (t) => {
    const { parseConfigText } = await import('../../src/config/validate.js');
    const text = 'locations: [{ name: hq, ips: [10.0.0.0/8] }]\n';
    t.same(await runApart('configText', { text, source: 'doc.yaml' }), parseConfigText(text, 'doc.yaml'), 'the same config');
    const err = await rejection(runApart('configText', { text: 'locations: [{ name: hq, ips: [nope] }]\n', source: 'bad.yaml' }));
    t.ok(err instanceof BuiltConfigError, 'a ConfigError');
    t.match((err as ConfigError).errors[0], 'locations[0].ips[0]', 'by path');
  });

  t.test('one child serves jobs in a row, and goes away when idle', async (t) => {
    await runApart('config', { data: GOOD, source: 'a' });
    const first = sidecars();
    t.equal(first.length, 1, 'one child after the first job');
    await runApart('config', { data: GOOD, source: 'b' });
    await Promise.all([runApart('config', { data: GOOD, source: 'c' }), runApart('pacCheck', { checks: [], urls: [], hosts: [] }), runApart('config', { data: GOOD, source: 'd' })]);
    t.same(sidecars(), first, 'the same child answered the jobs that followed');
    t.ok(await until(() => sidecars().length === 0, 5000), 'no child left once idle');
    await runApart('config', { data: GOOD, source: 'e' });
    const next = sidecars();
    t.equal(next.length, 1, 'a new job starts a new child');
    t.not(next[0], first[0], 'not the one that went');
  });

  t.test('a child that dies fails the jobs it held, saying how', async (t) => {
    // A PAC file that never returns keeps the child busy until it is killed.
    const job = runApart('pacCheck', { checks: [{ label: 'spin', runs: [{ clientIp: '192.0.2.1', text: 'function FindProxyForURL(u, h) { for (;;) {} }' }] }], urls: ['http://a.example/'], hosts: [] });
    t.ok(await until(() => sidecars().length === 1, 5000), 'the child is up');
    process.kill(sidecars()[0]!, 'SIGKILL');
    const err = await rejection(job);
    t.ok(err instanceof Error, 'the job failed');
    t.match(err!.message, /pacCheck: sidecar exited \(SIGKILL\)/, 'saying which job and how the child ended');
    const after = await runApart('config', { data: GOOD, source: 'after' });
    t.equal(after.locations[0]!.name, 'hq', 'the next job gets a new child and its answer');
  });
});
