import t from 'tap';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../helpers/origin.js';
import { LogSink, viaProxy } from '../helpers/tollgate.js';
import { startTollgate } from '../../src/main.js';
import { AdminTokens } from '../../src/admin/tokens.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-act-'));
const file = join(dir, 'tollgate.yaml');
const base = (extra: string) => `
listeners: { proxy: 127.0.0.1:0, control: 127.0.0.1:0 }
store: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }
nodeName: act-node
locations:
  - name: lab
    ips: [127.0.0.1/32]
${extra}`;
writeFileSync(file, base(''));

const origin = await startOrigin();
const access = new LogSink();
const app = new LogSink();
const tg = await startTollgate({ configPath: file, accessLog: access, appLog: app });
t.teardown(async () => {
  await tg.shutdown();
  await origin.close();
  rmSync(dir, { recursive: true, force: true });
});
const adminToken = await new AdminTokens(tg.store).generate('test');

function activateViaApi(): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: tg.controlAddress.port, method: 'POST', path: '/admin/activate', headers: { authorization: `Bearer ${adminToken}` } }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(b) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('a good activation swaps the runtime; new requests see it', async (t) => {
  const before = await viaProxy(tg.proxyAddress.port, `${origin.url}/hello`, { localAddress: '127.0.0.2' });
  t.equal(before.status, 403, '127.0.0.2 is not in any location yet');
  writeFileSync(file, base(`  - name: second\n    ips: [127.0.0.2/32]\n`));
  const r = await activateViaApi();
  t.equal(r.status, 200);
  t.same(r.body, { ok: true, version: 2, warnings: [] });
  const after = await viaProxy(tg.proxyAddress.port, `${origin.url}/hello`, { localAddress: '127.0.0.2' });
  t.equal(after.status, 200);
  t.equal(tg.runtime.current.version, 2);
});

t.test('a bad activation keeps the old config running and says why', async (t) => {
  writeFileSync(file, base(`  - name: broken\n    ips: [127.0.0.300/32]\n    color: blue\n`));
  const r = await activateViaApi();
  t.equal(r.status, 422);
  t.equal(r.body.ok, false);
  t.same(r.body.errors, ['locations[1].ips[0]: "127.0.0.300/32" is not a CIDR', 'locations[1].color: unknown key']);
  t.equal(tg.runtime.current.version, 2, 'still the previous generation');
  const still = await viaProxy(tg.proxyAddress.port, `${origin.url}/hello`, { localAddress: '127.0.0.2' });
  t.equal(still.status, 200);
  t.ok(app.lines.some((l) => l.msg === 'activation failed; the previous config keeps running'), 'logged with every error');
});

t.test('an in-flight request finishes on the runtime it started with', async (t) => {
  writeFileSync(file, base(''));
  const slow = viaProxy(tg.proxyAddress.port, `${origin.url}/slow?ms=300`, { localAddress: '127.0.0.2' });
  await new Promise((r) => setTimeout(r, 100));
  const r = await activateViaApi();
  t.equal(r.body.ok, true);
  t.equal((await slow).status, 200, 'the request admitted under the old config completes');
  const now = await viaProxy(tg.proxyAddress.port, `${origin.url}/hello`, { localAddress: '127.0.0.2' });
  t.equal(now.status, 403, 'new requests use the new config');
});

t.test('a change that needs a restart is reported as a warning', async (t) => {
  writeFileSync(file, base('').replace('127.0.0.1:0, control', '127.0.0.1:1, control'));
  const r = await activateViaApi();
  t.equal(r.body.ok, true);
  t.same(r.body.warnings, ['listeners changed: restart to apply']);
});

t.test('the admin API refuses non-loopback peers', async (t) => {
  // Every address here is loopback, so this checks the route exists with the right method only.
  const r = await new Promise<number>((resolve) =>
    http.get({ host: '127.0.0.1', port: tg.controlAddress.port, path: '/admin/activate' }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }),
  );
  t.equal(r, 405);
});
