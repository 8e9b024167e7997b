import t from 'tap';
import { runCli as run } from '../helpers/cli.js';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa } from '../../src/tls/ca.js';
import { selfSigned } from '../helpers/tls.js';
import { openssl } from '../helpers/openssl.js';



/** fingerprint is openssl's SHA-256 fingerprint of a PEM file, as `AA:BB:...`. */
const fingerprint = (file: string) => /=([0-9A-F:]+)/.exec(openssl(['x509', '-in', file, '-noout', '-fingerprint', '-sha256']).out)![1]!;

t.test('ca init, show and import, with the CA where the config says', async (t) => {
  const dir = t.testdir({ 'tollgate.yaml': 'cloud: corp.test\ninspection: { caCert: pki/inspect.crt, caKey: pki/inspect.key }\n' });
  const config = join(dir, 'tollgate.yaml');
  const cert = join(dir, 'pki/inspect.crt');
  const key = join(dir, 'pki/inspect.key');

  const init = await run(['ca', 'init', '--key', 'p256', '--permit', 'corp.test', '--config', config]);
  t.equal(init.code, 0, init.stderr);
  t.equal(statSync(key).mode & 0o777, 0o600, 'the key is mode 0600');
  t.match(openssl(['x509', '-in', cert, '-noout', '-text']).out, /Name Constraints: critical\s+Permitted:\s+DNS:corp\.test/);
  t.match(init.stdout, `SHA-256 fingerprint: ${fingerprint(cert)}`);
  t.match(init.stdout, 'http://ip.corp.test/ca.crt');

  const again = await run(['ca', 'init', '--config', config]);
  t.equal(again.code, 1);
  t.match(again.stderr, /a CA is already at .*pki\/inspect\.crt.*--force/);

  const show = await run(['ca', 'show', '--config', config]);
  t.equal(show.code, 0, show.stderr);
  const sha1 = /=([0-9A-F:]+)/.exec(openssl(['x509', '-in', cert, '-noout', '-fingerprint', '-sha1']).out)![1]!;
  for (const line of [
    'Subject:             CN=Tollgate Inspection CA, O=Tollgate',
    `SHA-256 fingerprint: ${fingerprint(cert)}`,
    `SHA-1 fingerprint:   ${sha1}`,
    `Certificate file:    ${cert}`,
    'Key:                 ECDSA P-256',
  ]) {
    t.match(show.stdout, line);
  }
  t.match(show.stdout, /Expires: +20\d\d-/);

  const before = readFileSync(cert, 'utf8');
  const leaf = selfSigned(['www.corp.test']);
  writeFileSync(join(dir, 'leaf.crt'), leaf.cert);
  writeFileSync(join(dir, 'leaf.key'), leaf.key);
  const mine = createCa({ keyType: 'p256', commonName: 'Corp Inspection' });
  writeFileSync(join(dir, 'corp.crt'), mine.certPem);
  writeFileSync(join(dir, 'corp.key'), mine.keyPem);
  writeFileSync(join(dir, 'other.key'), createCa({ keyType: 'p256' }).keyPem);

  const notCa = await run(['ca', 'import', join(dir, 'leaf.crt'), join(dir, 'leaf.key'), '--force', '--config', config]);
  t.equal(notCa.code, 1);
  t.match(notCa.stderr, /leaf\.crt \(CN=www\.corp\.test\) is not a CA certificate/);
  const mismatch = await run(['ca', 'import', join(dir, 'corp.crt'), join(dir, 'other.key'), '--force', '--config', config]);
  t.equal(mismatch.code, 1);
  t.match(mismatch.stderr, /the key does not belong to .*corp\.crt/);
  const missing = await run(['ca', 'import', join(dir, 'nope.crt'), join(dir, 'corp.key'), '--config', config]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot read .*nope\.crt: ENOENT/);
  t.equal(readFileSync(cert, 'utf8'), before, 'nothing refused was written');

  const noForce = await run(['ca', 'import', join(dir, 'corp.crt'), join(dir, 'corp.key'), '--config', config]);
  t.equal(noForce.code, 1);
  t.match(noForce.stderr, '--force');
  const ok = await run(['ca', 'import', join(dir, 'corp.crt'), join(dir, 'corp.key'), '--force', '--config', config]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(fingerprint(cert), fingerprint(join(dir, 'corp.crt')));
  t.equal(statSync(key).mode & 0o777, 0o600);
  t.match((await run(['ca', 'show', '--config', config])).stdout, 'Subject:             CN=Corp Inspection, O=Tollgate');
});

t.test('ca: bad arguments and a missing CA are explained', async (t) => {
  const dir = t.testdir({ 'tollgate.yaml': 'inspection: { caCert: ca.crt, caKey: ca.key }\n' });
  const config = join(dir, 'tollgate.yaml');
  const cases: [string[], number, RegExp][] = [
    [['ca', 'init', '--key', 'dsa', '--config', config], 2, /--key must be one of rsa2048, rsa3072, rsa4096, p256/],
    [['ca', 'init', '--permit', 'not a domain', '--config', config], 2, /--permit "not a domain" is not a domain/],
    [['ca', 'init', '--days', '0', '--config', config], 2, /--days/],
    [['ca', 'import', 'one', '--config', config], 2, /ca import takes CERT and KEY/],
    [['ca', 'show', '--config', config], 1, /no CA at .*ca\.crt: create one with `tollgate ca init`/],
    [['ca', 'frob'], 2, /unknown subcommand "frob"/],
  ];
  for (const [args, code, re] of cases) {
    const r = await run(args);
    t.equal(r.code, code, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
  }
});

t.test('the default CA files are git-ignored, so the key is never committed', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const repo = join(import.meta.dirname, '../..');
  for (const f of ['certs/ca/ca.key', 'certs/ca/ca.crt', 'certs/other.key']) {
    t.equal(spawnSync('git', ['check-ignore', '-q', f], { cwd: repo }).status, 0, `${f} is ignored`);
  }
});
