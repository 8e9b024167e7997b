import t from 'tap';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { ConfigError } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { compileLocator } from '../../src/proxy/locate.js';
import { checkCa, createCa, LAB_CA_NAME, writeCa } from '../../src/tls/ca.js';
import { LeafMinter } from '../../src/tls/leaf.js';
import { prepareInspection } from '../../src/tls/inspection.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

const idp = { id: 'okta', name: 'Okta', ssoUrl: 'https://corp.okta.com/app/sso/saml', certificate: 'x.pem', entityId: 'http://www.okta.com/x', default: true };

/** withCa writes a CA into dir and returns a config input pointing at it. */
async function withCa(dir: string, input: ConfigInput): Promise<ConfigInput> {
  const c = createCa({ keyType: 'p256' });
  await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, c.certPem, c.keyPem);
  return { ...input, inspection: { caCert: 'ca.crt', caKey: 'ca.key', ...input.inspection } };
}

t.test('which hosts are inspected where: do-not-inspect, exempt and host rules before the location', async (t) => {
  const dir = t.testdir();
  const config = validateConfig(
    await withCa(dir, {
      locations: [
        { name: 'hq', ips: ['10.0.0.0/16'], inspection: 'on', sublocations: [{ name: 'guests', ips: ['10.0.9.0/24'], inspection: 'off' }] },
        { name: 'branch', ips: ['10.1.0.0/16'], sublocations: [{ name: 'lab', ips: ['10.1.5.0/24'], inspection: 'on' }] },
      ],
      idps: [idp],
      authentication: { exemptions: { hosts: ['*.oktacdn.com'] } },
      inspection: {
        doNotInspect: ['*.apple.com', 'pinned.example'],
        hosts: [
          { match: ['never.example.com'], inspect: 'off' },
          { match: ['.always.example'], inspect: 'on' },
        ],
      },
    }),
  );
  const { inspection } = await prepareInspection(config, { baseDir: dir, source: 'test' });
  const loc = compileLocator(config.locations);
  const table: [string, string, boolean, string][] = [
    ['www.example.com', '10.0.0.5', true, 'location'],
    ['www.example.com', '10.0.9.5', false, 'location'], // guests: sublocation off
    ['www.example.com', '10.1.0.5', false, 'location'], // branch: off by default
    ['www.example.com', '10.1.5.5', true, 'location'], // branch lab sublocation on
    ['www.example.com', '192.0.2.1', false, 'unknown_location'],
    ['api.apple.com', '10.0.0.5', false, 'do_not_inspect'],
    ['pinned.example', '10.0.0.5', false, 'do_not_inspect'],
    ['corp.okta.com', '10.0.0.5', false, 'exempt'], // the IdP's own SSO host
    ['static.oktacdn.com', '10.0.0.5', false, 'exempt'],
    ['never.example.com', '10.0.0.5', false, 'host'],
    ['always.example', '10.1.0.5', true, 'host'],
    ['x.always.example', '192.0.2.1', true, 'host'],
  ];
  for (const [host, ip, inspect, reason] of table) {
    t.same(inspection.decide(host, loc.lookup(ip)), { inspect, reason }, `${host} from ${ip}`);
  }
  t.ok(inspection.used);
  t.ok(inspection.minter !== null && inspection.ca !== null);
});

t.test('inspection on and no CA: the start is refused, saying how to make one', async (t) => {
  const dir = t.testdir();
  const input = (extra: Partial<ConfigInput>) =>
    testConfig(join(dir, 'data'), { inspection: { caCert: join(dir, 'none', 'ca.crt'), caKey: join(dir, 'none', 'ca.key') }, ...extra });
  const on = input({ locations: [{ name: 'hq', ips: ['127.0.0.0/8'], inspection: 'on' }] });
  await t.rejects(prepareInspection(validateConfig(on), { baseDir: dir, source: 'tollgate.yaml' }), ConfigError);
  try {
    await startTestTollgate(on);
    t.fail('started without a CA');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.match((err as ConfigError).message, /inspection: TLS inspection is on \(locations\[0\] "hq"\) but no CA at .*none\/ca\.crt: create one with `tollgate ca init`, or import your own with `tollgate ca import CERT KEY`/);
  }
  t.notOk(existsSync(join(dir, 'none')), 'no CA was made silently');
  // An override that turns inspection on for some hosts counts too.
  const byHost = input({ inspection: { caCert: join(dir, 'none', 'ca.crt'), caKey: join(dir, 'none', 'ca.key'), hosts: [{ match: ['a.example'], inspect: 'on' }] } });
  await t.rejects(prepareInspection(validateConfig(byHost), { baseDir: dir, source: 'x' }), { errors: [/inspection\.hosts\[0\]/] });
  // Off everywhere, a missing CA is no problem.
  const off = await prepareInspection(validateConfig(input({})), { baseDir: dir, source: 'x' });
  t.equal(off.inspection.ca, null);
  t.equal(off.inspection.used, false);
  t.same(off.warnings, []);
});

t.test('an unusable CA refuses the activation when inspection is on, and is only a warning when it is off', async (t) => {
  const dir = t.testdir();
  const a = createCa({ keyType: 'p256' });
  const b = createCa({ keyType: 'p256' });
  writeFileSync(join(dir, 'ca.crt'), a.certPem);
  writeFileSync(join(dir, 'ca.key'), b.keyPem, { mode: 0o600 });
  const cfg = (inspection: 'on' | 'off') => validateConfig({ locations: [{ name: 'hq', ips: ['10.0.0.0/8'], inspection }], inspection: { caCert: 'ca.crt', caKey: 'ca.key' } });
  await t.rejects(prepareInspection(cfg('on'), { baseDir: dir, source: 'x' }), { errors: [/the CA cannot be used: the key does not belong to/] });
  const off = await prepareInspection(cfg('off'), { baseDir: dir, source: 'x' });
  t.equal(off.inspection.ca, null);
  t.match(off.warnings, [/cannot be used: the key does not belong/]);
});

t.test('labCa makes a lab CA once, labelled NOT FOR PRODUCTION, and the minter survives an unchanged activation', async (t) => {
  const dir = t.testdir();
  const input: ConfigInput = { locations: [{ name: 'hq', ips: ['10.0.0.0/8'], inspection: 'on' }], inspection: { labCa: true, caCert: 'lab/ca.crt', caKey: 'lab/ca.key' } };
  const first = await prepareInspection(validateConfig(input), { baseDir: dir, source: 'x' });
  t.match(first.warnings, [/made a lab CA at .*lab\/ca\.crt \(NOT FOR PRODUCTION\)/]);
  t.ok(first.inspection.ca?.lab);
  t.match(first.inspection.ca?.subject, LAB_CA_NAME);
  const pem = readFileSync(join(dir, 'lab/ca.crt'), 'utf8');
  const leaf = await first.inspection.minter!.leaf('a.example');
  const second = await prepareInspection(validateConfig(input), { baseDir: dir, source: 'x', previous: first.inspection });
  t.same(second.warnings, [], 'no new CA the second time');
  t.equal(readFileSync(join(dir, 'lab/ca.crt'), 'utf8'), pem);
  t.equal(second.inspection.minter, first.inspection.minter, 'same minter: same key, cache kept');
  t.equal(second.inspection.minter!.cached('a.example'), leaf);
  const third = await prepareInspection(validateConfig({ ...input, inspection: { ...input.inspection, leafValidityDays: 7 } }), { baseDir: dir, source: 'x', previous: second.inspection });
  t.not(third.inspection.minter, second.inspection.minter, 'new leaf settings: a new minter');
});

t.test('upstream trust: public roots plus the extra bundle, and a lab origin\'s own CA for its hosts only', async (t) => {
  const dir = t.testdir();
  const labCa = createCa({ keyType: 'p256' });
  const corpCa = createCa({ keyType: 'p256' });
  writeFileSync(join(dir, 'lab-ca.pem'), labCa.certPem);
  writeFileSync(join(dir, 'corp-bundle.pem'), `corporate roots\n${corpCa.certPem}`);
  const config = validateConfig(
    await withCa(dir, {
      locations: [{ name: 'hq', ips: ['10.0.0.0/8'], inspection: 'on' }],
      inspection: { upstreamCaBundle: 'corp-bundle.pem', hosts: [{ match: ['origin.lab.test'], upstreamCa: 'lab-ca.pem' }] },
    }),
  );
  const { inspection } = await prepareInspection(config, { baseDir: dir, source: 'x' });
  t.equal(inspection.upstream('origin.lab.test').labCa, true);
  t.equal(inspection.upstream('www.example.com').labCa, false);
  // Two origins: one with a leaf from the lab CA, one with a leaf from the corporate CA.
  const serve = async (caPem: { certPem: string; keyPem: string }, host: string) => {
    const leaf = await new LeafMinter({ ca: checkCa(caPem.certPem, caPem.keyPem) }).leaf(host);
    const s = createServer({ SNICallback: (_n, cb) => cb(null, leaf.context) }, (sock) => sock.end('ok'));
    s.on('tlsClientError', () => {});
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    t.teardown(() => s.close());
    return (s.address() as AddressInfo).port;
  };
  const labPort = await serve(labCa, 'origin.lab.test');
  const corpPort = await serve(corpCa, 'intranet.corp.test');
  const hello = (port: number, servername: string, trustFor: string) =>
    new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, servername, secureContext: inspection.upstream(trustFor).context });
      s.setTimeout(5000, () => s.destroy(new Error('timeout')));
      s.on('data', () => {});
      s.on('end', () => resolve('ok'));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  t.equal(await hello(labPort, 'origin.lab.test', 'origin.lab.test'), 'ok', 'the lab origin, with its own CA trusted for it');
  t.equal(await hello(labPort, 'origin.lab.test', 'www.example.com'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the lab CA is trusted for its hosts only');
  t.equal(await hello(corpPort, 'intranet.corp.test', 'www.example.com'), 'ok', 'the extra bundle is trusted for every host');

  // The system's bundle (where an admin installs corporate roots) is trusted too; false turns it off.
  const sysCa = createCa({ keyType: 'p256' });
  writeFileSync(join(dir, 'system-bundle.pem'), sysCa.certPem);
  const sysPort = await serve(sysCa, 'app.internal.test');
  const sysDir = join(dir, 'sys');
  mkdirSync(sysDir);
  const sysInput = await withCa(sysDir, { locations: [{ name: 'hq', ips: ['10.0.0.0/8'], inspection: 'on' }] });
  const withSystem = async (systemCaBundle: string | false) =>
    (await prepareInspection(validateConfig({ ...sysInput, inspection: { ...sysInput.inspection, systemCaBundle } }), { baseDir: sysDir, source: 'x' })).inspection;
  const on = await withSystem(join(dir, 'system-bundle.pem'));
  const off = await withSystem(false);
  const helloWith = (insp: typeof on) =>
    new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: sysPort, servername: 'app.internal.test', secureContext: insp.upstream('app.internal.test').context });
      s.setTimeout(5000, () => s.destroy(new Error('timeout')));
      s.on('data', () => {});
      s.on('end', () => resolve('ok'));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  t.equal(await helloWith(on), 'ok', "the system bundle's CA is trusted");
  t.equal(await helloWith(off), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'and not with systemCaBundle: false');
});

t.test('config: inspection settings are checked with every error at once', async (t) => {
  const dir = t.testdir();
  try {
    validateConfig({
      locations: [{ name: 'hq', ips: ['10.0.0.0/8'], inspection: 'yes', sublocations: [{ name: 's', ips: ['10.1.0.0/16'], inspection: 'maybe' }] }],
      inspection: {
        doNotInspect: ['*.apple.com', 'bad pattern'],
        hosts: [{ match: ['*.apple.com'], inspect: 'on' }, { match: ['a.example'] }, { match: [] , inspect: 'off' }],
        leafValidityDays: 397,
        leafKey: 'dsa',
        wat: 1,
      },
    } as unknown as ConfigInput);
    t.fail('accepted');
  } catch (err) {
    const errors = (err as ConfigError).errors;
    for (const re of [
      /^locations\[0\]\.inspection: /,
      /^locations\[0\]\.sublocations\[0\]\.inspection: /,
      /^inspection\.doNotInspect\[1\]: "bad pattern" is not a host pattern/,
      /^inspection\.hosts\[1\]: sets neither inspect nor upstreamCa/,
      /^inspection\.hosts\[2\]\.match: /,
      /^inspection\.leafValidityDays: /,
      /^inspection\.leafKey: /,
      /^inspection\.wat: unknown key/,
    ]) {
      t.ok(errors.some((e) => re.test(e)), `${re} in ${JSON.stringify(errors)}`);
    }
  }
  // The doNotInspect conflict is checked once the rest is valid.
  t.throws(() => validateConfig({ inspection: { doNotInspect: ['*.apple.com'], hosts: [{ match: ['*.apple.com'], inspect: 'on' }] } }), {
    errors: [/^inspection\.hosts\[0\]\.match\[0\]: "\*\.apple\.com" is also on doNotInspect, which wins/],
  });
  const bad = validateConfig(
    await withCa(dir, { locations: [{ name: 'hq', ips: ['10.0.0.0/8'], inspection: 'on' }], inspection: { upstreamCaBundle: 'missing.pem', hosts: [{ match: ['x.test'], upstreamCa: 'ca.key' }] } }),
  );
  await t.rejects(prepareInspection(bad, { baseDir: dir, source: 'x' }), {
    errors: ['inspection.upstreamCaBundle: missing.pem: cannot read (ENOENT)', 'inspection.hosts[0].upstreamCa: ca.key: holds no PEM certificate'],
  });
});
