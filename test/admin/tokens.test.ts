import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { adminTokenFile, AdminTokens, parseAdminToken, readTokenFile, TokenFileError, writeTokenFile } from '../../src/admin/tokens.js';
import { validateConfig } from '../../src/config/validate.js';
import { ScimTokens, VERIFIED_TTL_MS } from '../../src/scim/tokens.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-admin-tokens-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const secret = 'A'.repeat(43);
t.test('parseAdminToken accepts tga.<name>.<43 base64url chars> only', async (t) => {
  const cases: [string, { name: string; secret: string } | null][] = [
    [`tga.admin.${secret}`, { name: 'admin', secret }],
    [`tga.ops-2.${'_-x9'.repeat(10)}abc`, { name: 'ops-2', secret: `${'_-x9'.repeat(10)}abc` }],
    [`tga.Admin.${secret}`, null],
    [`tga.-ops.${secret}`, null],
    [`tga..${secret}`, null],
    [`tga.admin.${secret}A`, null],
    [`tga.admin.${secret.slice(1)}`, null],
    [`tga.admin.${secret.slice(1)}=`, null],
    [`tga.ad.min.${secret}`, null],
    [`TGA.admin.${secret}`, null],
    [secret, null],
    ['', null],
    [`tga.${'a'.repeat(33)}.${secret}`, null],
  ];
  for (const [input, want] of cases) t.same(parseAdminToken(input), want, JSON.stringify(input));
});

t.test('a token names its holder; rotation and revocation are per name', async (t) => {
  const store = new EmbeddedStore({ path: join(dir, 'store') });
  t.teardown(() => store.close());
  const clock = { now: Date.now() };
  const tokens = new AdminTokens(store, () => clock.now);
  const admin = await tokens.generate('admin');
  const ops = await tokens.generate('ops');
  t.equal(await tokens.verify(admin), 'admin');
  t.equal(await tokens.verify(ops), 'ops');
  const swapped = `tga.ops.${parseAdminToken(admin)!.secret}`;
  t.equal(await tokens.verify(swapped), null, "one name's secret does not open another name");
  const admin2 = await tokens.generate('admin');
  t.equal(await tokens.verify(admin), null, 'the replaced token is refused at once');
  t.equal(await tokens.verify(admin2), 'admin');
  t.equal(await tokens.verify(ops), 'ops', 'other names keep theirs');
  await tokens.revoke('ops');
  t.equal(await tokens.verify(ops), null);

  // Another node (its own store object on the file) refuses a rotated token within a second.
  const there = new EmbeddedStore({ path: join(dir, 'store') });
  t.teardown(() => there.close());
  const remote = new AdminTokens(there, () => clock.now);
  t.equal(await remote.verify(admin2), 'admin');
  await tokens.generate('admin');
  clock.now += VERIFIED_TTL_MS;
  t.equal(await remote.verify(admin2), null);

  await t.rejects(tokens.generate('Bad Name'), /must be 1-32 lower-case letters/);
});

t.test('admin and SCIM tokens live apart: a SCIM token for a tenant called "admin" is no admin token', async (t) => {
  const store = new EmbeddedStore({ path: join(dir, 'apart') });
  t.teardown(() => store.close());
  const scim = await new ScimTokens(store).generate('admin');
  t.equal(await new AdminTokens(store).verify(`tga.admin.${scim}`), null);
  const admin = await new AdminTokens(store).generate('admin');
  t.notOk(await new ScimTokens(store).verify('admin', parseAdminToken(admin)!.secret));
});

t.test('the token file sits beside the data directory unless admin.tokenFile names it', async (t) => {
  const cases: [object, string][] = [
    [{}, resolve('data.admin-token')],
    [{ store: { type: 'embedded', path: '/var/lib/tollgate/data/' } }, '/var/lib/tollgate/data.admin-token'],
    [{ store: { type: 'redis', url: 'redis://127.0.0.1:6379' } }, resolve('tollgate.admin-token')],
    [{ admin: { tokenFile: '/etc/tollgate/token' } }, '/etc/tollgate/token'],
  ];
  for (const [cfg, want] of cases) t.equal(adminTokenFile(validateConfig(cfg)), want, JSON.stringify(cfg));
});

t.test('the token file is written 0600 whatever the umask, and a wider one is refused', async (t) => {
  const file = join(dir, 'token');
  const old = process.umask(0o000);
  try {
    writeTokenFile(file, 'tga.admin.x');
  } finally {
    process.umask(old);
  }
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal(readFileSync(file, 'utf8'), 'tga.admin.x\n');
  t.equal(readTokenFile(file), 'tga.admin.x');
  writeFileSync(file, 'tga.admin.y\n');
  chmodSync(file, 0o640);
  t.throws(() => readTokenFile(file), new TokenFileError(`the admin token at ${file} is open to other users (mode 0640): run "chmod 600 ${file}"`));
  writeTokenFile(file, 'tga.admin.z');
  t.equal(statSync(file).mode & 0o777, 0o600, 'replacing a wider file leaves 0600');
  t.equal(readTokenFile(file), 'tga.admin.z');
  t.throws(() => readTokenFile(join(dir, 'none')), /no admin token at .*none: create one with "tollgate admin token"/);
});
