import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CA_KEY_TYPES, checkCa, createCa, describeCa, LAB_CA_NAME, loadCa, writeCa, type CaKeyType } from '../../src/tls/ca.js';
import { LeafMinter } from '../../src/tls/leaf.js';
import { selfSigned } from '../helpers/tls.js';
import { openssl, x509Text } from '../helpers/openssl.js';

const day = 86_400_000;

t.test('a new CA has the extensions a root needs, as openssl reads them', async (t) => {
  const dir = t.testdir();
  const expectKey: Record<CaKeyType, RegExp> = {
    rsa2048: /Public-Key: \(2048 bit\)[\s\S]*Signature Algorithm: sha256WithRSAEncryption/,
    rsa3072: /Public-Key: \(3072 bit\)[\s\S]*Signature Algorithm: sha256WithRSAEncryption/,
    rsa4096: /Public-Key: \(4096 bit\)[\s\S]*Signature Algorithm: sha256WithRSAEncryption/,
    p256: /NIST CURVE: P-256[\s\S]*Signature Algorithm: ecdsa-with-SHA256/,
  };
  // rsa4096 takes seconds to generate on a busy machine; rsa3072 goes down the same path.
  for (const keyType of CA_KEY_TYPES.filter((k) => k !== 'rsa4096')) {
    const now = new Date();
    const { certPem, keyPem } = createCa({ keyType, now });
    const text = x509Text(dir, certPem);
    t.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0\n/, `${keyType}: CA:TRUE, pathlen 0, critical`);
    t.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/, `${keyType}: keyCertSign and cRLSign only, critical`);
    t.match(text, /X509v3 Subject Key Identifier: *\n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}\n/, `${keyType}: subject key id`);
    t.match(text, expectKey[keyType], `${keyType}: key and sha256 signature`);
    t.notMatch(text, /Name Constraints/, `${keyType}: no name constraints unless asked`);
    const pem = join(dir, `${keyType}.crt`);
    writeFileSync(pem, certPem);
    t.match(openssl(['verify', '-x509_strict', '-CAfile', pem, pem]).out, `${pem}: OK`, `${keyType}: a valid self-signed root`);
    const ca = checkCa(certPem, keyPem, now);
    const years = (ca.notAfter.getTime() - now.getTime()) / (365 * day);
    t.ok(years > 9.9 && years < 10.1, `${keyType}: valid for ten years (${years.toFixed(2)})`);
    t.ok(ca.notBefore.getTime() < now.getTime(), `${keyType}: backdated for clock skew`);
  }
});

t.test('name constraints limit which leaves clients accept', async (t) => {
  const dir = t.testdir();
  const { certPem, keyPem } = createCa({ keyType: 'p256', permittedDomains: ['example.com', 'lab.test'] });
  t.match(x509Text(dir, certPem), /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:example.com\s+DNS:lab.test/);
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, certPem);
  const minter = new LeafMinter({ ca: checkCa(certPem, keyPem) });
  for (const [host, ok] of [
    ['www.example.com', true],
    ['example.com', true],
    ['a.lab.test', true],
    ['example.org', false],
    ['notexample.com', false],
  ] as const) {
    const leaf = join(dir, `${host}.pem`);
    writeFileSync(leaf, (await minter.leaf(host)).certPem);
    const r = openssl(['verify', '-CAfile', caFile, leaf]);
    if (ok) t.match(r.out, `${leaf}: OK`, `${host} is inside`);
    else t.match(r.out, /permitted subtree violation/, `${host} is outside`);
  }
});

t.test('the key is written mode 0600 in a 0700 folder, and a CA is not replaced without force', async (t) => {
  const dir = t.testdir();
  const paths = { cert: join(dir, 'ca', 'ca.crt'), key: join(dir, 'ca', 'ca.key') };
  const a = createCa({ keyType: 'p256' });
  await writeCa(paths, a.certPem, a.keyPem);
  t.equal(statSync(paths.key).mode & 0o777, 0o600, 'key 0600');
  t.equal(statSync(join(dir, 'ca')).mode & 0o777, 0o700, 'folder 0700');
  t.equal(statSync(paths.cert).mode & 0o777, 0o644, 'certificate readable: users install it');
  t.match(readFileSync(paths.key, 'utf8'), /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8');
  const b = createCa({ keyType: 'p256' });
  await t.rejects(writeCa(paths, b.certPem, b.keyPem), { code: 'CA_EXISTS' });
  t.equal(readFileSync(paths.cert, 'utf8'), a.certPem, 'the old CA stays');
  await writeCa(paths, b.certPem, b.keyPem, { force: true });
  t.equal((await loadCa(paths)).certPem, b.certPem);
  chmodSync(paths.key, 0o644);
  await loadCa(paths);
  t.equal(statSync(paths.key).mode & 0o777, 0o600, 'loading tightens a key others could read');
});

t.test('loading a CA that is not there says how to make one', async (t) => {
  const dir = t.testdir();
  await t.rejects(loadCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }), { code: 'CA_MISSING', message: /tollgate ca init.*tollgate ca import CERT KEY/ });
});

t.test('a certificate that is not a usable CA, or a key that is not its own, is refused', async (t) => {
  const dir = t.testdir();
  const good = createCa({ keyType: 'p256' });
  const leafish = selfSigned(['not-a-ca.test']);
  const rsa1024 = join(dir, 'weak');
  const weak = openssl(['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', `${rsa1024}.key`, '-out', `${rsa1024}.crt`, '-subj', '/CN=weak', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE']);
  t.equal(weak.status, 0, 'openssl makes a CA with a 1024-bit key');
  const signOnly = join(dir, 'signonly');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${signOnly}.key`, '-out', `${signOnly}.crt`, '-subj', '/CN=sign-only', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature']);
  const encKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const encrypted = encKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString();
  const encryptedLegacy = encKey.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString();
  const old = createCa({ keyType: 'p256', now: new Date(Date.now() - 20 * day), validityDays: 10 });
  const future = createCa({ keyType: 'p256', now: new Date(Date.now() + 20 * day) });
  const cases: [string, string, string, string][] = [
    ['a leaf certificate', leafish.cert, leafish.key, 'CA_NOT_CA'],
    ['a CA that may not sign certificates', readFileSync(`${signOnly}.crt`, 'utf8'), readFileSync(`${signOnly}.key`, 'utf8'), 'CA_NOT_CA'],
    ['a key that is not the CA\'s', good.certPem, createCa({ keyType: 'p256' }).keyPem, 'CA_KEY_MISMATCH'],
    ['an RSA key of 1024 bits', readFileSync(`${rsa1024}.crt`, 'utf8'), readFileSync(`${rsa1024}.key`, 'utf8'), 'CA_KEY_UNSUPPORTED'],
    ['an encrypted key', good.certPem, encrypted, 'CA_KEY_ENCRYPTED'],
    ['an encrypted key in the legacy PEM form', good.certPem, encryptedLegacy, 'CA_KEY_ENCRYPTED'],
    ['a key that is not a key', good.certPem, 'hello', 'CA_KEY_UNREADABLE'],
    ['an expired CA', old.certPem, old.keyPem, 'CA_EXPIRED'],
    ['a CA not valid yet', future.certPem, future.keyPem, 'CA_NOT_YET_VALID'],
    ['not a certificate', 'hello', good.keyPem, 'CA_UNREADABLE'],
    ['a damaged certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', good.keyPem, 'CA_UNREADABLE'],
  ];
  for (const [name, cert, key, code] of cases) t.throws(() => checkCa(cert, key, new Date(), 'ca.crt'), { name: 'CaError', code }, name);
  t.throws(() => checkCa(leafish.cert, leafish.key, new Date(), 'admin.crt'), { message: /admin\.crt \(CN=not-a-ca\.test\) is not a CA certificate/ });
});

t.test('an admin\'s intermediate CA made with openssl issues leaves that chain to its root', async (t) => {
  const dir = t.testdir();
  const f = (n: string) => join(dir, n);
  const ok = (r: { status: number; out: string }) => t.equal(r.status, 0, r.out);
  ok(openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('root.key'), '-out', f('root.crt'), '-subj', '/CN=Corp Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']));
  ok(openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('int.key'), '-out', f('int.csr'), '-subj', '/O=Corp/CN=Corp Inspection']));
  writeFileSync(f('ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  ok(openssl(['x509', '-req', '-in', f('int.csr'), '-CA', f('root.crt'), '-CAkey', f('root.key'), '-CAcreateserial', '-out', f('int.crt'), '-days', '20', '-extfile', f('ext.cnf')]));
  const bundle = readFileSync(f('int.crt'), 'utf8') + readFileSync(f('root.crt'), 'utf8');
  const ca = checkCa(bundle, readFileSync(f('int.key'), 'utf8'));
  t.equal(ca.subject, 'O=Corp, CN=Corp Inspection');
  t.equal(ca.keyDescription, 'ECDSA P-256');
  t.equal(ca.chainPem, readFileSync(f('int.crt'), 'utf8'), 'the chain sent after a leaf holds the intermediate, not the root');
  const leaf = (await new LeafMinter({ ca }).leaf('app.corp.test')).certPem;
  writeFileSync(f('leaf.pem'), leaf);
  t.match(openssl(['verify', '-CAfile', f('root.crt'), '-untrusted', f('int.crt'), '-verify_hostname', 'app.corp.test', f('leaf.pem')]).out, `${f('leaf.pem')}: OK`);
  t.match(x509Text(dir, leaf), /Issuer: O ?= ?Corp, CN ?= ?Corp Inspection/);
});

t.test('ca show names the CA, its fingerprints, expiry and where users get it', async (t) => {
  const lab = createCa({ lab: true, keyType: 'p256' });
  const ca = checkCa(lab.certPem, lab.keyPem);
  t.ok(ca.lab);
  const text = describeCa(ca, '/srv/certs/ca/ca.crt', 'tollgate.test');
  t.match(text, `Subject:             CN=${LAB_CA_NAME}, O=Tollgate lab   (a LAB CA: NOT FOR PRODUCTION)`);
  t.match(text, `SHA-256 fingerprint: ${ca.x509.fingerprint256}`);
  t.match(text, `SHA-1 fingerprint:   ${ca.x509.fingerprint}`);
  t.match(text, /SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}\n/);
  t.match(text, `Expires:             ${ca.notAfter.toISOString()}`);
  t.match(text, 'Certificate file:    /srv/certs/ca/ca.crt');
  t.match(text, 'http://ip.tollgate.test/ca.crt');
  const plain = createCa({ keyType: 'p256', commonName: 'Corp Inspection' });
  const pc = checkCa(plain.certPem, plain.keyPem);
  t.notOk(pc.lab);
  t.notMatch(describeCa(pc, 'ca.crt', 'tollgate.test'), 'LAB');
});
