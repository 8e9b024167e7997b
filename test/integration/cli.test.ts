import t from 'tap';
import { CLI, runCli as run } from '../helpers/cli.js';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../helpers/origin.js';
import { viaProxy } from '../helpers/tollgate.js';
import { collectJsonLines } from '../helpers/node.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));


t.test('--help lists the commands', async (t) => {
  const r = await run(['--help']);
  t.equal(r.code, 0);
  for (const c of ['start', 'check-config', 'activate']) t.match(r.stdout, c);
  const u = await run(['frobnicate']);
  t.equal(u.code, 2);
  t.match(u.stderr, 'unknown command "frobnicate"');
});

t.test('check-config prints every error and exits non-zero', async (t) => {
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'locations: [{name: HQ, ips: [10.0.0.0/8]}]\n');
  const ok = await run(['check-config', good]);
  t.equal(ok.code, 0);
  t.match(ok.stdout, `${good}: ok (1 location, store embedded, cloud tollgate.test)`);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'locations: [{name: HQ, ips: [10.0.0.300/8, 10.0.0.1/8]}]\nstore: {type: redis}\nwat: 1\n');
  const r = await run(['check-config', bad]);
  t.equal(r.code, 1);
  t.match(r.stderr, `${bad}: 4 errors`);
  t.match(r.stderr, `${bad}: locations[0].ips[0]: "10.0.0.300/8" is not a CIDR`);
  t.match(r.stderr, `${bad}: locations[0].ips[1]: "10.0.0.1/8" has host bits set below /8`);
  t.match(r.stderr, `${bad}: wat: unknown key`);
  t.match(r.stderr, `${bad}: store: redis needs exactly one of url, cluster, sentinel`);
});

t.test('start, SIGHUP and `activate` re-read the file, SIGTERM drains', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const file = join(dir, 'run.yaml');
  const cfg = (extra = '') => `listeners: { proxy: 127.0.0.1:0, control: 127.0.0.1:0 }
store: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }
logging: { level: info, accessLog: ${JSON.stringify(join(dir, 'access.log'))} }
limits: { shutdownGraceMs: 5000 }
locations: [{ name: lab, ips: [127.0.0.1/32] }${extra}]
`;
  writeFileSync(file, cfg());
  const p: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (p.exitCode === null) p.kill('SIGKILL');
  });
  const lines = collectJsonLines(p.stderr!);
  const waitFor = async (pred: (l: Record<string, unknown>) => boolean, what: string) => {
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      const hit = lines.find(pred);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}; log: ${JSON.stringify(lines)}`);
  };
  const up = await waitFor((l) => l.msg === 'tollgate listening', 'listening');
  const proxyPort = Number(String(up.proxy).split(':').pop());
  const controlPort = Number(String(up.control).split(':').pop());

  t.equal((await viaProxy(proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.3' })).status, 403);
  writeFileSync(file, cfg(', { name: three, ips: [127.0.0.3/32] }'));
  p.kill('SIGHUP');
  await waitFor((l) => l.msg === 'config activated' && l.version === 2, 'SIGHUP activation');
  t.equal((await viaProxy(proxyPort, `${origin.url}/hello`, { localAddress: '127.0.0.3' })).status, 200, 'SIGHUP applied the new location');

  // `activate` finds the control listener through the config file; port 0 there, so point it at the real one.
  const actFile = join(dir, 'act.yaml');
  writeFileSync(actFile, `listeners: { control: 127.0.0.1:${controlPort} }\nstore: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }\n`);
  const token = await run(['admin', 'token', '--config', actFile]);
  t.equal(token.code, 0, token.stderr);
  const act = await run(['activate', '--config', actFile]);
  t.equal(act.code, 0, act.stderr);
  t.match(act.stdout, 'activated config version 3');

  writeFileSync(file, cfg(', { name: bad, ips: [nope] }'));
  const bad = await run(['activate', '--config', actFile]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, 'locations[1].ips[0]: "nope" is not a CIDR');

  // Force re-authentication through the admin API: everyone, or one user.
  const everyone = await run(['reauth', '--config', actFile]);
  t.equal(everyone.code, 0, everyone.stderr);
  t.match(everyone.stdout, /^everyone: 0 session\(s\) ended/);
  const one = await run(['reauth', '--user', 'alice@example.com', '--config', actFile]);
  t.equal(one.code, 0, one.stderr);
  t.match(one.stdout, /^user alice@example\.com: 0 session\(s\) ended/);

  // A slow request in flight when SIGTERM arrives still completes.
  const slow = viaProxy(proxyPort, `${origin.url}/slow?ms=700`);
  await new Promise((r) => setTimeout(r, 150));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  p.kill('SIGTERM');
  const r = await slow;
  t.equal(r.status, 200, 'in-flight request drained');
  t.equal(await exited, 0, 'clean exit');
  const refused = await new Promise<string>((resolve) =>
    http.get({ host: '127.0.0.1', port: proxyPort, path: '/' }, () => resolve('answered')).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error')),
  );
  t.equal(refused, 'ECONNREFUSED', 'listener is closed');
});
