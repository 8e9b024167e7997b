import t from 'tap';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { CERT_FILE, KEY_FILE, ensureLabKeys } from '../../src/labidp/keys.js';

const DAY = 86_400_000;

t.test('the signing pair is made once and kept across starts', async (t) => {
  const dir = join(t.testdir(), 'lab-idp');
  const first = await ensureLabKeys(dir);
  t.ok(first.created, 'made on the first start');
  t.notOk(first.replaced, 'a first start replaces nothing');
  t.match(first.reason, /no signing key and certificate/);
  t.equal(first.keyPath, join(dir, KEY_FILE));
  t.equal(first.certPath, join(dir, CERT_FILE));
  t.equal((await stat(first.keyPath)).mode & 0o777, 0o600, 'the key is readable by its owner only');
  t.equal((await stat(dir)).mode & 0o777, 0o700, 'so is the folder');
  t.equal(await readFile(first.certPath, 'utf8'), first.certPem);

  const second = await ensureLabKeys(dir);
  t.notOk(second.created, 'kept on the second start');
  t.equal(second.reason, null);
  t.equal(second.certPem, first.certPem, 'the certificate an admin copied stays valid');
  t.equal(second.keyPem, first.keyPem);
});

t.test('an expired certificate is replaced, and the reason says so', async (t) => {
  const dir = t.testdir();
  const old = makeSigningPair(undefined, new Date(Date.now() - DAY));
  await writeFile(join(dir, KEY_FILE), old.keyPem, { mode: 0o600 });
  await writeFile(join(dir, CERT_FILE), old.certPem);
  const keys = await ensureLabKeys(dir);
  t.ok(keys.created && keys.replaced, 'replaced');
  t.match(keys.reason, /expired on/);
  t.not(keys.certPem, old.certPem);
  t.equal(await readFile(join(dir, CERT_FILE), 'utf8'), keys.certPem, 'the new certificate is on disk');
  t.notOk((await ensureLabKeys(dir)).created, 'and kept from then on');
});

t.test('a certificate within 30 days of expiry is replaced; 31 days out it is kept', async (t) => {
  const dir = t.testdir();
  const made = await ensureLabKeys(dir);
  const notAfter = Date.now() + 365 * DAY;
  const kept = await ensureLabKeys(dir, new Date(notAfter - 31 * DAY));
  t.notOk(kept.created, '31 days left: kept');
  const renewed = await ensureLabKeys(dir, new Date(notAfter - 29 * DAY));
  t.ok(renewed.replaced, '29 days left: replaced');
  t.match(renewed.reason, /expires on .*, within 30 days/);
  t.not(renewed.certPem, made.certPem);
  t.notOk((await ensureLabKeys(dir, new Date(notAfter - 29 * DAY))).created, 'the new one is valid for a year from then');
});

t.test('a key that does not match its certificate, or is not a key, is replaced', async (t) => {
  const dir = t.testdir();
  const made = await ensureLabKeys(dir);
  await writeFile(join(dir, KEY_FILE), makeSigningPair().keyPem);
  const mismatch = await ensureLabKeys(dir);
  t.match(mismatch.reason, /does not belong to the certificate/);
  t.not(mismatch.certPem, made.certPem);
  await writeFile(join(dir, KEY_FILE), 'not a key');
  t.match((await ensureLabKeys(dir)).reason, /not a readable private key/);
  await writeFile(join(dir, CERT_FILE), 'not a certificate');
  t.match((await ensureLabKeys(dir)).reason, /not a PEM certificate/);
});

t.test('a kept key readable by others is made private again', async (t) => {
  const dir = t.testdir();
  const made = await ensureLabKeys(dir);
  await chmod(made.keyPath, 0o644);
  t.notOk((await ensureLabKeys(dir)).created);
  t.equal((await stat(made.keyPath)).mode & 0o777, 0o600);
});
