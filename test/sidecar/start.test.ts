/**
 * start: the built `tollgate start`, run as users run it (plain node, JavaScript), validates its
 * config and checks its PAC files in the sidecar: it serves, it refuses a bad config at start and
 * at SIGHUP with the sidecar's errors, and no sidecar is left running once it is up.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../helpers/origin.js';
import { viaProxy } from '../helpers/tollgate.js';
import { collectJsonLines } from '../helpers/node.js';
import { builtSrc } from '../helpers/transpile.js';
import { LAUNCH_OPTIONS } from '../../src/launch.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-sidecar-start-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const out = builtSrc(t, 'start');
const cli = join(out, 'cli.js');

const file = join(dir, 'tollgate.yaml');
const pacFile = join(dir, 'custom.pac');
const cfg = (locations: string) => `listeners: { proxy: 127.0.0.1:0, control: 127.0.0.1:0 }
store: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }
logging: { level: info, accessLog: ${JSON.stringify(join(dir, 'access.log'))} }
limits: { shutdownGraceMs: 1000 }
locations: [${locations}]
pac: { gateways: [gw.example.net:9400], file: ${JSON.stringify(pacFile)} }
`;
const GOOD_PAC = 'function FindProxyForURL(url, host) { return isPlainHostName(host) ? "DIRECT" : "PROXY gw.example.net:9400"; }';

/** sidecarsOf lists the children of pid that run the sidecar. */
function sidecarsOf(pid: number): number[] {
  let kids: number[];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return kids.filter((k) => {
    try {
      return readFileSync(`/proc/${k}/cmdline`, 'utf8').includes(join('sidecar', 'child.js'));
    } catch {
      return false; // gone between the listing and the read
    }
  });
}

let lastLines: Record<string, unknown>[] = [];
function run(): { p: ChildProcess; lines: Record<string, unknown>[]; stderr: () => string } {
  const p = spawn(process.execPath, [cli, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (p.exitCode === null) p.kill('SIGKILL');
  });
  let err = '';
  p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  lastLines = collectJsonLines(p.stderr!);
  return { p, lines: lastLines, stderr: () => err };
}

async function waitFor<T>(what: string, get: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(lastLines.slice(-6))}`);
}

t.test('a config with errors is refused at start, every error listed', async (t) => {
  writeFileSync(pacFile, GOOD_PAC);
  writeFileSync(file, cfg('{ name: lab, ips: [127.0.0.1/33] }, { name: lab, ips: [10.0.0.0/8] }'));
  const { p, stderr } = run();
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  t.equal(code, 1, 'exit status 1');
  t.match(stderr(), 'locations[0].ips[0]', 'the bad CIDR, by path');
  t.match(stderr(), 'locations[1].name: duplicates locations[0].name', 'and the duplicate name');
});

t.test('it serves, leaves no sidecar behind, and SIGHUP validates in the sidecar', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  writeFileSync(pacFile, GOOD_PAC);
  writeFileSync(file, cfg('{ name: lab, ips: [127.0.0.1/32] }'));
  const { p, lines } = run();
  const up = await waitFor('listening', () => lines.find((l) => l.msg === 'tollgate listening'));
  const proxyPort = Number(String(up.proxy).split(':').pop());
  t.equal((await viaProxy(proxyPort, `${origin.url}/hello`)).status, 200, 'a proxied request is served');
  const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
  t.same(cmdline.slice(1, 2 + LAUNCH_OPTIONS.length), [...LAUNCH_OPTIONS.map((o) => o.arg), cli], 'the PID started runs with its V8 launch options');
  t.ok(await waitFor('no sidecar', () => (sidecarsOf(p.pid!).length === 0 ? true : undefined), 5000), 'no sidecar runs once the start is done');

  // A PAC file that throws fails the check in the sidecar: the activation is refused, the old config serves on.
  writeFileSync(pacFile, 'function FindProxyForURL(url, host) { throw new Error("broken"); }');
  writeFileSync(file, cfg('{ name: lab, ips: [127.0.0.1/32] }, { name: three, ips: [127.0.0.3/32] }'));
  p.kill('SIGHUP');
  const failed = await waitFor('refused activation', () => lines.find((l) => String(l.msg).startsWith('activation failed')));
  t.match(JSON.stringify(failed.errors), 'FindProxyForURL', 'the PAC check says why');
  t.equal((await viaProxy(proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.3' })).status, 403, 'the new location is not active');

  // A config error found by the sidecar's validation, likewise.
  writeFileSync(pacFile, GOOD_PAC);
  writeFileSync(file, cfg('{ name: lab, ips: [127.0.0.1/32] }, { name: three, ips: [nope] }'));
  p.kill('SIGHUP');
  await waitFor('second refusal', () => (lines.filter((l) => String(l.msg).startsWith('activation failed')).length === 2 ? true : undefined));
  const second = lines.filter((l) => String(l.msg).startsWith('activation failed'))[1]!;
  t.match(JSON.stringify(second.errors), 'locations[1].ips[0]', 'the validation error, by path');

  writeFileSync(file, cfg('{ name: lab, ips: [127.0.0.1/32] }, { name: three, ips: [127.0.0.3/32] }'));
  p.kill('SIGHUP');
  await waitFor('activation', () => lines.find((l) => l.msg === 'config activated' && l.version === 2));
  t.equal((await viaProxy(proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.3' })).status, 200, 'the fixed config is active');
  t.ok(await waitFor('no sidecar', () => (sidecarsOf(p.pid!).length === 0 ? true : undefined), 5000), 'and its sidecar is gone again');

  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  p.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit');
});
