import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SamlSp, withIdpDefaults } from '../../src/auth/saml.js';
import { configSchema } from '../../src/config/schema.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { LAB_IDP_HELP, labIdpCommand, parseLabIdpArgs, startStandaloneLabIdp } from '../../src/labidp/standalone.js';
import { loadLabUsers } from '../../src/labidp/users.js';
import { labLogin, parse } from '../helpers/saml.js';

const root = join(import.meta.dirname, '../..');
const EXAMPLE_USERS = join(root, 'examples/lab-users.yaml');
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';

/** run starts labIdpCommand with an AbortSignal; ready resolves once it prints that it is running. */
function run(argv: string[]): { lines: string[]; errs: string[]; exit: Promise<number>; ready: Promise<void>; stop(): void } {
  const lines: string[] = [];
  const errs: string[] = [];
  const ac = new AbortController();
  let onReady = (): void => {};
  const running = new Promise<void>((resolve) => (onReady = resolve));
  const exit = labIdpCommand(argv, (s) => {
    lines.push(s);
    if (s.startsWith('Running.')) onReady();
  }, { signal: ac.signal, err: (s) => errs.push(s) });
  const ready = Promise.race([running, exit.then((code) => Promise.reject(new Error(`lab-idp exited ${code}: ${errs.join(' | ')}`)))]);
  // Only tests that expect it to start await ready; for the others its rejection is expected.
  ready.catch(() => {});
  return { lines, errs, exit, ready, stop: () => ac.abort() };
}

/** printed reads one labelled value from the command's output. */
function printed(text: string, label: RegExp): string {
  const m = new RegExp(`${label.source}[^:]*:\\s+(\\S+)`).exec(text);
  if (m === null) throw new Error(`no ${label.source} in the output`);
  return m[1]!;
}

async function spFor(t: Test, o: { ssoUrl: string; entityId: string; certPem: string; cloud: string; orgId: string; orgSpecific: boolean }): Promise<SamlSp> {
  // A directory of its own: a second t.testdir() in the same test would empty the first one.
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-sp-'));
  const store = new EmbeddedStore({ path: dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const idp = withIdpDefaults({ id: 'lab', name: 'Lab', ssoUrl: o.ssoUrl, idpCertPem: o.certPem, idpEntityId: o.entityId, orgSpecificEntityId: o.orgSpecific });
  return new SamlSp({ idp, cloud: o.cloud, orgId: o.orgId, store });
}

t.test('arguments: defaults, and each value checked', async (t) => {
  t.same(parseLabIdpArgs([]), {
    help: false, host: '127.0.0.1', port: 9402, usersFile: 'examples/lab-users.yaml', keyDir: './data/lab-idp',
    cloud: 'tollgate.test', orgId: null, spEntityId: 'https://login.tollgate.test/sfc_sso', acsUrl: 'http://login.tollgate.test/sfc_sso',
  });
  t.match(parseLabIdpArgs(['--listen', '[::1]:0', '--cloud', 'Lab.Example', '--org-specific', 'org_7']), {
    host: '::1', port: 0, cloud: 'lab.example', orgId: 'org_7',
    spEntityId: 'https://login.lab.example/sfc_sso/org_7', acsUrl: 'http://login.lab.example/sfc_sso',
  });
  const bad: Array<[string[], RegExp]> = [
    [['--listen', 'nope'], /^--listen must be HOST:PORT/],
    [['--listen', '127.0.0.1:70000'], /^--listen .*got "127\.0\.0\.1:70000"$/],
    [['--listen', '127.0.0.1'], /^--listen/],
    [['--cloud', 'bad name'], /^--cloud must be a host name/],
    [['--cloud', 'tollgate.test/x'], /^--cloud/],
    [['--cloud', '10.0.0.1'], /^--cloud/],
    [['--org-specific', 'a/b'], /^--org-specific must be 1-64 letters/],
    [['--users', ''], /^--users must not be empty$/],
    [['--users'], /argument missing/],
    [['--frob'], /Unknown option '--frob'/],
    [['extra'], /Unexpected argument 'extra'/],
  ];
  for (const [argv, want] of bad) t.match(parseLabIdpArgs(argv), want, argv.join(' '));
});

t.test('bad input exits 2 with one clear line and no stack trace', async (t) => {
  const dir = t.testdir({
    'bad.yaml': 'users: [\n',
    'invalid.yaml': 'users:\n  - loginName: not-an-email\n    password: pw\n',
    'none.yaml': 'users: []\n',
  });
  const cases: Array<[string, string[], RegExp]> = [
    ['missing users file', ['--users', join(dir, 'nope.yaml')], /cannot read users file .*nope\.yaml: no such file/],
    ['bad YAML', ['--users', join(dir, 'bad.yaml')], /bad\.yaml: not valid YAML: /],
    ['a user without an email', ['--users', join(dir, 'invalid.yaml')], /invalid\.yaml: users\.0\.loginName: must be an email address/],
    ['no users', ['--users', join(dir, 'none.yaml')], /none\.yaml: no users/],
    ['bad --listen', ['--listen', 'localhost'], /--listen must be HOST:PORT/],
    ['port out of range', ['--listen', '127.0.0.1:65536'], /--listen/],
    ['unknown option', ['--port', '1'], /Unknown option '--port'/],
  ];
  for (const [what, argv, want] of cases) {
    // parseArgs keeps the last of a repeated option, so a case's own --listen wins.
    const r = run(['--keys', join(dir, 'keys'), '--listen', '127.0.0.1:0', ...argv]);
    t.equal(await r.exit, 2, `${what}: exit 2`);
    t.equal(r.errs.length, 1, `${what}: one message`);
    t.match(r.errs[0], /^tollgate lab-idp: /, what);
    t.match(r.errs[0], want, what);
    t.notMatch(r.errs[0], /\n|\bat .*:\d+:\d+/, `${what}: one line, no stack`);
    t.same(r.lines, [], `${what}: nothing printed as if it had started`);
  }
});

t.test('a port in use exits 1 with one line', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => busy.close(() => resolve())));
  const r = run(['--users', EXAMPLE_USERS, '--keys', t.testdir(), '--listen', `127.0.0.1:${(busy.address() as AddressInfo).port}`]);
  t.equal(await r.exit, 1);
  t.match(r.errs, [/^tollgate lab-idp: cannot start: .*EADDRINUSE/]);
  t.notMatch(r.errs[0], /\n/);
});

t.test('--help prints the usage and exits 0', async (t) => {
  const r = run(['--help']);
  t.equal(await r.exit, 0);
  t.same(r.lines, [LAB_IDP_HELP]);
  t.match(LAB_IDP_HELP, /NOT FOR PRODUCTION/);
});

t.test('the command prints what an admin copies, and Tollgate accepts its logins', async (t) => {
  const keys = join(t.testdir(), 'lab-idp');
  const cloud = 'lab.tollgate.test';
  const r = run(['--listen', '127.0.0.1:0', '--users', EXAMPLE_USERS, '--keys', keys, '--cloud', cloud, '--org-specific', '1001']);
  await r.ready;
  const text = r.lines.join('\n');

  t.match(text, /NOT FOR PRODUCTION/);
  const ssoUrl = printed(text, /SSO URL/);
  const entityId = printed(text, /IdP entity ID/);
  const certPath = printed(text, /Certificate/);
  t.match(ssoUrl, /^http:\/\/127\.0\.0\.1:\d+\/sso$/);
  t.equal(certPath, join(keys, 'signing.crt'));
  const certPem = await readFile(certPath, 'utf8');
  t.ok(text.includes(certPem.trim()), 'the PEM is printed, as in the file');
  t.match(text, 'https://login.lab.tollgate.test/sfc_sso/1001', 'the org-specific SP entity ID');
  const users = await loadLabUsers(EXAMPLE_USERS);
  for (const u of users) {
    t.ok(text.includes(u.loginName), `${u.loginName} is listed`);
    t.notOk(text.includes(u.password), `${u.loginName}'s password is not printed`);
  }

  // The snippet is valid config as it stands, for that cloud and orgId.
  const snippet = text.slice(text.indexOf('\nidps:\n') + 1, text.lastIndexOf('\n=====')).trimEnd();
  const config = configSchema.parse({ cloud, orgId: '1001', ...(parseYaml(snippet) as object) });
  t.match(config.idps, [{ id: 'lab', ssoUrl, certificate: certPath, entityId, orgSpecificEntityId: true, default: true, provisioning: 'jit' }]);

  // A real login: Tollgate's SP, configured from the printed values, validates what the IdP posts.
  const sp = await spFor(t, { ssoUrl, entityId, certPem, cloud, orgId: '1001', orgSpecific: true });
  const { url } = await sp.authorizeUrl('relay-1');
  const post = await labLogin(url, 'alice@example.com', 'alice-lab-pw');
  t.equal(post.acsUrl, 'http://login.lab.tollgate.test/sfc_sso');
  const signed = Array.from(parse(post.xml).getElementsByTagNameNS(NS_DSIG, 'Signature')).map((s) => (s.parentNode as Element).localName);
  t.same(signed.sort(), ['Assertion', 'Response'], 'Response and Assertion are both signed, as Okta does');
  const who = await sp.validate(post.samlResponse, post.relayState);
  t.match(who, { loginName: 'alice@example.com', displayName: 'Alice Anders', department: 'Engineering', groups: ['Engineering', 'VPN Users'], issuer: entityId });
  t.match(r.lines.join('\n'), /signed in alice@example\.com/, 'the login is logged');

  r.stop();
  t.equal(await r.exit, 0, 'stops cleanly');
  t.match(r.lines.at(-1), /NOT FOR PRODUCTION: stop requested, stopping/);
  await t.rejects(fetch(ssoUrl), 'no longer listening');
});

t.test('a restart keeps the certificate, so the copy pasted into Tollgate still verifies', async (t) => {
  const keyDir = t.testdir();
  const opts = { host: '127.0.0.1', port: 0, usersFile: EXAMPLE_USERS, keyDir, spEntityId: 'https://login.tollgate.test/sfc_sso', acsUrl: 'http://login.tollgate.test/sfc_sso' };
  const first = await startStandaloneLabIdp(opts);
  await first.close();
  t.ok(first.keys.created);
  const copied = await readFile(first.certPath, 'utf8');

  const logged: string[] = [];
  const second = await startStandaloneLabIdp({ ...opts, log: (l) => logged.push(l) });
  t.teardown(() => second.close());
  t.notOk(second.keys.created, 'kept');
  t.equal(second.certPem, copied);
  t.notMatch(logged.join('\n'), /new signing key|replaced/, 'nothing to re-copy, so nothing said');
  const sp = await spFor(t, { ssoUrl: second.ssoUrl, entityId: second.entityId, certPem: copied, cloud: 'tollgate.test', orgId: '1', orgSpecific: false });
  const { url } = await sp.authorizeUrl('relay-2');
  const post = await labLogin(url, 'carol@partner.example', 'carol-lab-pw');
  t.match(await sp.validate(post.samlResponse, post.relayState), { loginName: 'carol@partner.example', groups: ['Contractors'] });
});

t.test('a replaced certificate is announced', async (t) => {
  const keyDir = t.testdir();
  await writeFile(join(keyDir, 'signing.crt'), 'not a certificate');
  await writeFile(join(keyDir, 'signing.key'), 'not a key', { mode: 0o600 });
  const r = run(['--listen', '127.0.0.1:0', '--users', EXAMPLE_USERS, '--keys', keyDir]);
  await r.ready;
  r.stop();
  t.equal(await r.exit, 0);
  const text = r.lines.join('\n');
  t.match(text, /replaced the signing key and certificate .*signing\.crt: the certificate .* is not a PEM certificate/);
  t.match(text, /REPLACED: .*Paste the new certificate wherever the old one was\./);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} stops the command, which closes and exits 0 by itself`, async (t) => {
    // The command runs in a child process, so it gets real signals and must exit by itself once closed.
    const script = `import { labIdpCommand } from ${JSON.stringify(join(root, 'src/labidp/standalone.ts'))};\n` +
      'process.exitCode = await labIdpCommand(process.argv.slice(1));';
    const args = ['--listen', '127.0.0.1:0', '--users', EXAMPLE_USERS, '--keys', t.testdir()];
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script, '--', ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // A child that never says it runs is killed, so the test fails with what it printed, not by hanging.
    const startDeadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
    t.teardown(() => {
      clearTimeout(startDeadline);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (/^Running\./m.test(stdout)) resolve();
      });
      void closed.then(() => reject(new Error(`exited before running: ${stderr}`)));
    });
    clearTimeout(startDeadline);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.kill(signal);
    const code = await closed;
    clearTimeout(timer);
    t.equal(code, 0, `exit 0 (${stderr})`);
    t.match(stdout, `NOT FOR PRODUCTION: ${signal}, stopping`);
    t.equal(stderr, '');
  });
}
