/**
 * Explain names how the client's PAC file routes a URL and what the inspection rules decide for a
 * tunnel, from the active config, beside the pipeline's own steps.
 */
import t from 'tap';
import { join } from 'node:path';
import { createCa, writeCa } from '../../src/tls/ca.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

const dir = t.testdir();
const ca = createCa({ keyType: 'p256' });
await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, ca.certPem, ca.keyPem);
const tg = await startTestTollgate((d) => {
  const base = testConfig(d);
  return {
    ...base,
    locations: base.locations!.map((l) => ({ ...l, inspection: 'on' as const })),
    inspection: { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), doNotInspect: ['pinned.test'] },
    pac: { gateways: ['proxy-1.lab.test:9400', 'proxy-2.lab.test:9400'], bypass: ['*.intranet.test'] },
  };
});
t.teardown(() => tg.close());

async function explain(url: string): Promise<{ pac: { file: string; answer: string; rule: string } | null; inspection: { inspect: boolean; reason: string } | null }> {
  const r = await fetch(`http://127.0.0.1:${tg.controlPort}/api/explain?url=${encodeURIComponent(url)}&clientIp=127.0.0.5`, { headers: { ...tg.admin, accept: 'application/json' } });
  if (r.status !== 200) throw new Error(`explain answered ${r.status}: ${await r.text()}`);
  return (await r.json()) as never;
}

t.test('PAC routing: the bypass list goes DIRECT, everything else to the gateways in order', async (t) => {
  const bypass = await explain('http://www.intranet.test/');
  t.equal(bypass.pac?.answer, 'DIRECT');
  t.match(bypass.pac?.rule, /bypass/);
  const other = await explain('http://www.example.test/');
  t.equal(other.pac?.answer, 'PROXY proxy-1.lab.test:9400; PROXY proxy-2.lab.test:9400');
  t.equal(other.pac?.file, 'default');
  t.equal(other.inspection, null, 'plain HTTP is not a matter for inspection');
});

t.test('inspection: a tunnel at an inspecting location is inspected, a do-not-inspect host is not', async (t) => {
  const inspected = await explain('https://www.example.test/');
  t.equal(inspected.inspection?.inspect, true);
  const pinned = await explain('https://pinned.test/');
  t.equal(pinned.inspection?.inspect, false);
  t.match(pinned.inspection?.reason, /not.?inspect/i);
});
