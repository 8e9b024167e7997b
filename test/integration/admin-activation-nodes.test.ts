/**
 * Save and Activate on every node: three `tollgate start` processes on one Redis. An activation
 * through A is live on B and C within a second; a node that cannot build it (its certificate file is
 * missing on that host) keeps the old config, says so under /readyz and /api/nodes, and the
 * activation answer lists it; a node whose file disagrees on what must match refuses to start.
 *
 *   admin -> A POST /api/activate -> claim v2 in Redis -> publish -> B, C build v2 and swap (or report why not)
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { startNode, startRedisLab, type NodeProcess } from '../helpers/node.js';
import { controlCall, viaProxy } from '../helpers/tollgate.js';

t.setTimeout(120_000);

const rl = await startRedisLab('activation-nodes');
const { dir, origin, lab } = rl;
// C's config lives elsewhere: a relative certificate path that A and B can read is missing there.
const dirC = join(dir, 'host-c');
mkdirSync(dirC);
writeFileSync(join(dir, 'extra.pem'), makeSigningPair('Extra IdP').certPem);
const config = rl.config({ locations: [{ name: 'lab', ips: ['127.0.0.1/32'] }] });
const a = await startNode(dir, 'node-a', config);
const b = await startNode(dir, 'node-b', config);
const c = await startNode(dirC, 'node-c', config);
const nodes = [a, b, c];
t.teardown(() => rl.close(nodes));

async function api(node: NodeProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const r = await fetch(`http://127.0.0.1:${node.controlPort}${path}`, {
    method,
    headers: { ...node.admin, accept: 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}
const from = (n: NodeProcess, ip: string) => viaProxy(n.proxyPort, `${origin.url}/hello`, { localAddress: ip }).then((r) => r.status);

t.test('every node starts on the one active version', async (t) => {
  for (const n of nodes) t.match((await api(n, 'GET', '/api/config')).body, { version: 1, running: 1 });
  const listed = (await api(a, 'GET', '/api/nodes')).body.nodes as { name: string; configVersion: number }[];
  t.same(listed.map((n) => n.name).sort(), ['node-a', 'node-b', 'node-c'], 'each node heartbeats');
});

t.test('an activation on A routes on B and C within a second', async (t) => {
  for (const n of nodes) t.equal(await from(n, '127.0.0.40'), 403, 'not in a location yet');
  const staged = await api(a, 'PUT', '/api/config/draft/locations', [
    { name: 'lab', ips: ['127.0.0.1/32'] },
    { name: 'annex', ips: ['127.0.0.40/29'] },
  ]);
  t.same(staged.body.errors, []);
  t.equal(await from(b, '127.0.0.40'), 403, 'staged on A, not live on B');
  const asked = Date.now();
  const r = await api(a, 'POST', '/api/activate');
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.match(r.body, { ok: true, version: 2 });
  t.same(
    (r.body.nodes as { node: string; ok: boolean }[]).map((n) => [n.node, n.ok]).sort(),
    [
      ['node-b', true],
      ['node-c', true],
    ],
    'the answer lists how each other node took it',
  );
  for (const n of [b, c]) t.equal(await from(n, '127.0.0.41'), 200, 'routes by the new location');
  t.ok(Date.now() - asked <= 1000, `live everywhere ${Date.now() - asked} ms after the activation was asked`);
  for (const n of nodes) t.equal((await api(n, 'GET', '/api/config')).body.running, 2);
});

t.test('a node that cannot build the new version keeps the old one and says so', async (t) => {
  const staged = await api(b, 'PUT', '/api/config/draft/idps', [lab.config({ domains: ['example.com'] }), { id: 'extra', name: 'Extra', ssoUrl: 'https://extra.test/sso', certificate: 'extra.pem', entityId: 'urn:extra', domains: ['extra.test'] }]);
  t.same(staged.body.errors, []);
  // And a change every node could apply, to see C keep running the old version whole.
  await api(b, 'PUT', '/api/config/draft/locations', [{ name: 'lab', ips: ['127.0.0.1/32'] }, { name: 'annex', ips: ['127.0.0.40/29'] }, { name: 'wing', ips: ['127.0.0.48/29'] }]);
  const r = await api(b, 'POST', '/api/activate');
  t.equal(r.status, 200, 'the activating node (B) could build it');
  t.match(r.body, { ok: true, version: 3 });
  const byNode = new Map((r.body.nodes as { node: string; ok: boolean; errors?: string[] }[]).map((n) => [n.node, n]));
  t.equal(byNode.get('node-a')?.ok, true);
  t.equal(byNode.get('node-c')?.ok, false, 'C is listed as failed');
  t.match(byNode.get('node-c')?.errors, [/idps\[1\]\.certificate: cannot read extra\.pem: ENOENT/]);

  t.equal(await from(a, '127.0.0.49'), 200, 'A routes by v3');
  t.equal(await from(c, '127.0.0.49'), 403, 'C still routes by v2');
  t.equal(await from(c, '127.0.0.41'), 200, 'and serves v2 whole');
  t.equal((await api(c, 'GET', '/api/config')).body.running, 2);

  const ready = await controlCall(c.controlPort, 'GET', '/readyz', { accept: 'application/json' });
  t.equal(ready.status, 503, 'C is not ready');
  t.match(JSON.parse(ready.body), { error: { code: 'config_not_applied', message: /config v3 cannot be built here; running v2: idps\[1\]\.certificate: cannot read extra\.pem/ } });
  t.equal((await controlCall(a.controlPort, 'GET', '/readyz')).status, 200, 'A is ready');
  const listed = new Map(((await api(a, 'GET', '/api/nodes')).body.nodes as { name: string; configVersion: number; configFailed: { version: number; errors: string[] } | null }[]).map((n) => [n.name, n]));
  t.match(listed.get('node-c'), { configVersion: 2, configFailed: { version: 3, errors: [/extra\.pem/] } }, '/api/nodes shows it too');
  t.match(listed.get('node-b'), { configVersion: 3, configFailed: null });
  t.ok(c.lines.some((l) => l.msg === 'cannot build the config another node activated; the previous config keeps running'), 'C logged why');
});

t.test('a node whose file disagrees on the cloud refuses to start', async (t) => {
  const err = await startNode(dir, 'node-d', { ...config, cloud: 'other.test' }).then(
    async (n) => {
      nodes.push(n);
      return null;
    },
    (e: Error) => e,
  );
  t.ok(err !== null, 'it did not start');
  t.match(String(err?.message), /cloud: this node's file says \\"other\.test\\", the active config \\"tollgate\.test\\"/);
});
