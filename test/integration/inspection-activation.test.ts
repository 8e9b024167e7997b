import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTollgate } from '../../src/main.js';
import { createCa, writeCa } from '../../src/tls/ca.js';
import { LogSink } from '../helpers/tollgate.js';

t.test('activation: turning inspection on without a CA is refused and the running config stays; with a CA it is taken', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'tollgate.yaml');
  const cfg = (inspection: 'on' | 'off') => `
listeners: { proxy: 127.0.0.1:0, control: 127.0.0.1:0 }
store: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }
locations: [{ name: lab, ips: [127.0.0.1/32], inspection: ${inspection} }]
inspection: { caCert: pki/ca.crt, caKey: pki/ca.key }
`;
  writeFileSync(file, cfg('off'));
  const tg = await startTollgate({ configPath: file, accessLog: new LogSink(), appLog: new LogSink() });
  t.teardown(() => tg.shutdown());
  t.equal(tg.runtime.current.inspection?.used, false);

  writeFileSync(file, cfg('on'));
  const refused = await tg.activate();
  t.equal(refused.ok, false);
  t.match(refused.ok ? [] : refused.errors, [/inspection: TLS inspection is on \(locations\[0\] "lab"\) but no CA at .*pki\/ca\.crt: create one with `tollgate ca init`/]);
  t.equal(tg.runtime.current.version, 1, 'the old config keeps running');

  const ca = createCa({ keyType: 'p256' });
  await writeCa({ cert: join(dir, 'pki/ca.crt'), key: join(dir, 'pki/ca.key') }, ca.certPem, ca.keyPem);
  const taken = await tg.activate();
  t.equal(taken.ok, true, JSON.stringify(taken));
  const insp = tg.runtime.current.inspection!;
  t.equal(insp.used, true);
  t.equal(insp.ca?.certPem, ca.certPem);
  const leaf = await insp.minter!.leaf('www.example.com');
  t.equal((await tg.activate()).ok, true);
  t.equal(tg.runtime.current.inspection!.minter!.cached('www.example.com'), leaf, 'an unchanged activation keeps the minted leaves');
  rmSync(join(dir, 'pki'), { recursive: true });
  t.equal((await tg.activate()).ok, false, 'the CA gone: refused again');
  t.equal(tg.runtime.current.inspection!.minter!.cached('www.example.com'), leaf, 'and the running minter keeps serving');
});
