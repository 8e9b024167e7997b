import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError, DEFAULT_CONFIG } from '../../src/config/load.js';
import { parseConfigText, validateConfig } from '../../src/config/validate.js';

/** errorsOf returns the `path: reason` lines of a config that must fail. */
function errorsOf(text: string): string[] {
  try {
    parseConfigText(text, 'f.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
  throw new Error('config was accepted');
}

t.test('valid configs', async (t) => {
  const cases: [string, string, (c: ReturnType<typeof parseConfigText>) => void][] = [
    ['empty file gets every default', '', (c) => {
      t.equal(c.cloud, 'tollgate.test');
      t.equal(c.listeners.proxy, '127.0.0.1:9400');
      t.equal(c.listeners.control, '127.0.0.1:9401');
      t.same(c.store, { type: 'embedded', path: './data' });
      t.equal(c.unknownSources, 'deny');
      t.same(c.connectPorts, [443]);
    }],
    ['the documented example', `
cloud: tollgate.test
orgId: "37146169"
listeners: { proxy: 0.0.0.0:9400, control: 127.0.0.1:9401 }
store: { type: embedded, path: ./data }
locations:
  - name: HQ
    ips: [192.0.2.0/24, "2001:db8::/32"]
    enforceAuthentication: false
    trustedForwarders: []
    sublocations:
      - { name: Guest-WiFi, ips: [192.0.2.128/25], enforceAuthentication: false }
unknownSources: deny
connectPorts: [443]
`, (c) => {
      t.equal(c.orgId, '37146169');
      t.equal(c.locations[0]!.sublocations[0]!.name, 'Guest-WiFi');
    }],
    ['JSON is YAML too', '{"cloud":"lab.example","store":{"type":"redis","url":"redis://127.0.0.1:6379/0"}}', (c) => {
      t.equal(c.cloud, 'lab.example');
      t.equal(c.store.type, 'redis');
      t.equal(c.store.type === 'redis' && c.store.keyPrefix, 'tollgate:');
    }],
    ['redis cluster form', 'store: {type: redis, cluster: ["127.0.0.1:7000", "127.0.0.1:7001"]}', (c) => {
      t.same(c.store.type === 'redis' && c.store.cluster, ['127.0.0.1:7000', '127.0.0.1:7001']);
    }],
    ['redis sentinel form', 'store: {type: redis, sentinel: {name: mymaster, hosts: ["127.0.0.1:26379"]}}', (c) => {
      t.equal(c.store.type === 'redis' && c.store.sentinel?.name, 'mymaster');
    }],
    ['IPv6 listener', 'listeners: {proxy: "[::1]:9400"}', (c) => t.equal(c.listeners.proxy, '[::1]:9400')],
    ['bare address is a host route', 'locations: [{name: a, ips: [10.1.2.3, "::1"]}]', (c) => t.same(c.locations[0]!.ips, ['10.1.2.3', '::1'])],
  ];
  for (const [name, text, check] of cases) {
    t.test(name, async () => check(parseConfigText(text, 'f.yaml')));
  }
});

t.test('invalid configs report path and reason', async (t) => {
  const cases: [string, string, string[]][] = [
    ['bad CIDR', 'locations: [{name: HQ, ips: [10.0.0.300/8]}]', ['locations[0].ips[0]: "10.0.0.300/8" is not a CIDR']],
    ['prefix too long', 'locations: [{name: HQ, ips: [10.0.0.0/33]}]', ['locations[0].ips[0]: "10.0.0.0/33" is not a CIDR: prefix must be 0-32']],
    ['host bits set', 'locations: [{name: HQ, ips: [10.0.0.5/8]}]', ['locations[0].ips[0]: "10.0.0.5/8" has host bits set below /8']],
    ['unknown top-level key', 'clowd: x', ['clowd: unknown key']],
    ['unknown nested key', 'locations: [{name: HQ, ips: [10.0.0.0/8], enforce: true}]', ['locations[0].enforce: unknown key']],
    ['wrong type', 'connectPorts: ["443"]', ['connectPorts[0]: Invalid input: expected number, received string']],
    ['port out of range', 'connectPorts: [70000]', ['connectPorts[0]: Too big: expected number to be <=65535']],
    ['bad listener', 'listeners: {proxy: nope}', ['listeners.proxy: "nope" is not host:port']],
    ['bad enum', 'unknownSources: allow', ['unknownSources: Invalid option: expected one of "deny"|"authenticate"']],
    [
      'bad exemption patterns',
      'authentication: {exemptions: {hosts: ["*okta.com", "a.*.b", "okta.com"], urls: ["ftp://x.test/", "http://x.test/a*b", "http://x.test/ok*"]}}',
      [
        'authentication.exemptions.hosts[0]: "*okta.com" is not a host pattern (host, *.domain or .domain)',
        'authentication.exemptions.hosts[1]: "a.*.b" is not a host pattern (host, *.domain or .domain)',
        'authentication.exemptions.urls[0]: "ftp://x.test/" is not a URL pattern (http://host/path, optionally ending in *)',
        'authentication.exemptions.urls[1]: "http://x.test/a*b" is not a URL pattern (http://host/path, optionally ending in *)',
      ],
    ],
    ['custom days out of range', 'authentication: {frequency: customDays, customDays: 181}', ['authentication.customDays: Too big: expected number to be <=180']],
    ['surrogate idle too short', 'locations: [{name: HQ, ips: [10.0.0.0/8], surrogate: {enabled: true, idleMs: 5}}]', ['locations[0].surrogate.idleMs: Too small: expected number to be >=60000']],
    ['duplicate location name', 'locations: [{name: HQ, ips: [10.0.0.0/8]}, {name: hq, ips: [11.0.0.0/8]}]', ['locations[1].name: duplicates locations[0].name "hq"']],
    ['sublocation outside its location', 'locations: [{name: HQ, ips: [10.0.0.0/8], sublocations: [{name: g, ips: [11.0.0.0/24]}]}]', ['locations[0].sublocations[0].ips[0]: "11.0.0.0/24" is outside location "HQ"']],
    ['trusted forwarder not an IP', 'locations: [{name: HQ, ips: [10.0.0.0/8], trustedForwarders: [proxy.lan]}]', ['locations[0].trustedForwarders[0]: is not an IP address']],
    ['redis without a form', 'store: {type: redis}', ['store: redis needs exactly one of url, cluster, sentinel']],
    ['redis with a bad url', 'store: {type: redis, url: "http://x"}', ['store.url: must start with redis:// or rediss://']],
    ['unknown store type', 'store: {type: memcached}', ['store.type: Invalid discriminator value']],
    ['YAML syntax error', 'locations: [', ['line 1, column 13: Flow sequence']],
    ['duplicate YAML key', 'cloud: a.test\ncloud: b.test', ['line 2, column 1: Map keys must be unique']],
  ];
  for (const [name, text, expected] of cases) {
    t.test(name, async (t) => {
      const errs = errorsOf(text);
      for (const e of expected) t.ok(errs.some((x) => x.startsWith(e)), `has "${e}" in ${JSON.stringify(errs)}`);
    });
  }
  t.test('every error at once', async (t) => {
    const errs = errorsOf(`
locations:
  - name: HQ
    ips: [10.0.0.300/8, 10.0.0.5/8]
    bogus: 1
listeners: {proxy: abc}
store: {type: redis}
`);
    t.equal(errs.length, 5, JSON.stringify(errs));
  });
});

t.test('loadConfig', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cfg-'));
  t.test('no file gives the embedded default with a loopback location', async (t) => {
    const c = await loadConfig(undefined);
    t.equal(c.locations[0]!.name, 'local');
    t.same(c.locations[0]!.ips, DEFAULT_CONFIG.locations![0]!.ips);
  });
  t.test('missing file names the file', async (t) => {
    await t.rejects(loadConfig(join(dir, 'nope.yaml')), { errors: ['cannot read: ENOENT'] });
  });
  t.test('errors carry the file name', async (t) => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'cloud: "not a host!"');
    const err = await loadConfig(f).catch((e: unknown) => e);
    t.ok(err instanceof ConfigError);
    t.match((err as Error).message, `${f}: cloud: is not a host name`);
  });
  t.test('result is deeply frozen', async (t) => {
    const c = validateConfig({ locations: [{ name: 'a', ips: ['10.0.0.0/8'] }] });
    t.ok(Object.isFrozen(c));
    t.ok(Object.isFrozen(c.locations[0]!.ips));
    t.throws(() => (c.locations as unknown as unknown[]).push(1));
  });
});
