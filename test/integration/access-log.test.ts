/**
 * The access log under rotation: logrotate renames the file and asks Tollgate to reopen it (the admin
 * API or `tollgate log reopen` on one node, SIGUSR1 on a `tollgate start` process). With traffic
 * flowing throughout, every transaction is in exactly one of the two files.
 *
 *   requests ... mv access.log access.log.1 -> reopen -> requests ... => old ∪ new = all, old ∩ new = ∅
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTollgate } from '../../src/main.js';
import { AdminTokens } from '../../src/admin/tokens.js';
import { NSS_FIELDS } from '../../src/nss.js';
import { startNode } from '../helpers/node.js';
import { startOrigin } from '../helpers/origin.js';
import { LogSink, testConfig, viaProxy } from '../helpers/tollgate.js';

t.setTimeout(90_000);
const dir = mkdtempSync(join(tmpdir(), 'tollgate-access-log-'));
const origin = await startOrigin();
t.teardown(async () => {
  await origin.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

t.test('a reopen through the admin API mid-traffic loses and doubles no line', async (t) => {
  const file = join(dir, 'api.log');
  const tg = await startTollgate({ config: { ...testConfig(join(dir, 'data-api')), logging: { level: 'warn', accessLog: file } }, appLog: new LogSink() });
  t.teardown(() => tg.shutdown());
  const token = await new AdminTokens(tg.store).generate('ops');
  const N = 400;
  let sent = 0;
  const worker = async () => {
    while (sent < N) {
      const i = sent++;
      t.equal((await viaProxy(tg.proxyAddress.port, `${origin.url}/hello?n=${i}`)).status, 200);
    }
  };
  const traffic = Promise.all([worker(), worker(), worker(), worker()]);
  while (sent < N / 2) await new Promise((r) => setTimeout(r, 5));
  renameSync(file, `${file}.1`);
  const r = await fetch(`http://127.0.0.1:${tg.controlAddress.port}/api/log/reopen`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  t.same(await r.json(), { reopened: true });
  await traffic;
  await tg.shutdown();
  const old = lines(`${file}.1`).map((l) => JSON.parse(l).url as string);
  const fresh = lines(file).map((l) => JSON.parse(l).url as string);
  t.ok(old.length > 0 && fresh.length > 0, `both files have lines (${old.length} before, ${fresh.length} after)`);
  const all = [...old, ...fresh];
  t.equal(all.length, N, 'no line lost or doubled');
  t.equal(new Set(all).size, N, 'each transaction once');
});

t.test('SIGUSR1 and `tollgate log reopen` reopen a node process, writing NSS lines', async (t) => {
  const file = join(dir, 'nss.log');
  const node = await startNode(dir, 'node-log', { ...testConfig(join(dir, 'data-nss')), logging: { level: 'info', accessLog: file, format: 'nss' } });
  t.teardown(() => node.stop());
  const get = async (n: string) => t.equal((await viaProxy(node.proxyPort, `${origin.url}/hello?n=${n}`)).status, 200);
  const wait = async (f: string, n: number) => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) {
      try {
        if (lines(f).length >= n) return;
      } catch {
        // Not created yet.
      }
    }
    t.fail(`${f} did not get ${n} line(s)`);
  };
  await get('before');
  await wait(file, 1);
  renameSync(file, `${file}.1`);
  process.kill(node.pid, 'SIGUSR1');
  await node.waitFor((l) => l.msg === 'access log reopened', 'the reopen');
  await get('after-signal');
  await wait(file, 1);
  t.match(lines(`${file}.1`), [/\t127\.0\.0\.1:\d+\/hello\?n=before\t/], 'the old file keeps what came before');
  const row = lines(file)[0]!.split('\t');
  t.equal(row.length, NSS_FIELDS.length, 'an NSS line');
  t.match(row[3], /\/hello\?n=after-signal$/);
  t.equal(row[4], 'Allowed');
  t.equal(row[13], '200');

  renameSync(file, `${file}.2`);
  const ctl = join(dir, 'ctl-log.yaml');
  writeFileSync(ctl, `listeners: { control: 127.0.0.1:${node.controlPort} }\n`);
  const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../src/cli.ts'), 'log', 'reopen', '--config', ctl], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TOLLGATE_ADMIN_TOKEN: node.adminToken } });
    let stdout = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout }));
  });
  t.same(out, { code: 0, stdout: 'access log reopened\n' });
  await get('after-cli');
  await wait(file, 1);
  t.match(lines(file)[0], /\/hello\?n=after-cli\t/);
  t.equal(lines(`${file}.2`).length, 1);
});
