/**
 * The PAC files a config produces, asked about URLs through pac-resolver (QuickJS), as a browser
 * would ask them; and what blocks an activation.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { PacEvaluator } from '../../src/pac/evaluate.js';
import { explainAnswer } from '../../src/pac/explain.js';
import { preparePac, type PacFiles, type PacVariant } from '../../src/pac/files.js';
import { jsString } from '../../src/pac/generate.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-pac-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const GW = 'PROXY p1.example.net:9400; PROXY p2.example.net:9400; PROXY [2001:db8::9]:9400';
const BRANCH_GW = 'PROXY branch-1.example.net:3128; PROXY 192.0.2.53:3128';

const base: ConfigInput = {
  locations: [
    { name: 'HQ', ips: ['192.0.2.0/25'] },
    { name: 'Branch', ips: ['192.0.2.128/25'] },
  ],
  idps: [],
  authentication: { exemptions: { hosts: ['*.okta.com', '*.oktacdn.com'] } },
  pac: {
    gateways: ['p1.example.net:9400', 'p2.example.net:9400', '[2001:db8::9]:9400'],
    locations: [{ name: 'branch', gateways: ['branch-1.example.net:3128', '192.0.2.53:3128'] }],
    bypass: ['intranet.example.com', '*.corp.example', '.example.org', '198.51.100.0/24', '203.0.113.7'],
  },
};

async function prepare(input: ConfigInput) {
  return preparePac(validateConfig(input), { baseDir: dir, source: 'test' });
}

/** ask evaluates one variant's served text for a URL. */
async function ask(files: PacFiles, v: PacVariant, url: string, clientIp = '192.0.2.10') {
  const ev = await PacEvaluator.compile(files.text(v, clientIp), { clientIp, hosts: new Map() });
  try {
    return await ev.run(url);
  } finally {
    ev.dispose();
  }
}

t.test('the generated PAC answers each kind of URL as configured', async (t) => {
  const { files, warnings } = await prepare(base);
  t.same(warnings, []);
  const dflt = files.fallback!;
  const cases: [string, string, string][] = [
    // url, answer, why
    ['http://intranet/', 'DIRECT', 'plain host name'],
    ['http://wiki/path?x=1', 'DIRECT', 'plain host name'],
    ['http://10.20.30.40/', 'DIRECT', 'private, link-local or loopback address 10.0.0.0/8'],
    ['http://172.31.255.1/', 'DIRECT', 'private, link-local or loopback address 172.16.0.0/12'],
    ['http://192.168.0.1:8080/', 'DIRECT', 'private, link-local or loopback address 192.168.0.0/16'],
    ['http://169.254.169.254/', 'DIRECT', 'private, link-local or loopback address 169.254.0.0/16'],
    ['http://127.0.0.1/', 'DIRECT', 'private, link-local or loopback address 127.0.0.0/8'],
    ['http://[::1]/', 'DIRECT', 'private, link-local or loopback IPv6 address (::1)'],
    ['http://[fd12:3456::1]/', 'DIRECT', 'private, link-local or loopback IPv6 address (fd*:*)'],
    ['http://[fe80::1]/', 'DIRECT', 'private, link-local or loopback IPv6 address (fe8*:*)'],
    ['http://172.32.0.1/', GW, 'no rule matched'],
    ['http://[2001:db8::1]/', GW, 'no rule matched'],
    ['http://intranet.example.com/', 'DIRECT', 'bypass list: intranet.example.com'],
    ['http://a.b.corp.example/', 'DIRECT', 'bypass list: *.corp.example'],
    ['http://corp.example/', GW, 'no rule matched'],
    ['http://example.org/', 'DIRECT', 'bypass list: .example.org'],
    ['https://www.example.org/secret/path', 'DIRECT', 'bypass list: .example.org'],
    ['http://198.51.100.200/', 'DIRECT', 'bypass list: 198.51.100.0/24'],
    ['http://203.0.113.7/', 'DIRECT', 'bypass list: 203.0.113.7'],
    ['http://203.0.113.8/', GW, 'no rule matched'],
    ['http://example.okta.com/app/sso/saml', GW, 'no rule matched'],
    ['https://ok1static.oktacdn.com/', GW, 'no rule matched'],
    ['http://ip.tollgate.test/', GW, "Tollgate's own hosts *.tollgate.test"],
    ['http://tollgate.test/', GW, "Tollgate's own host tollgate.test"],
    ['http://www.example.com/', GW, 'no rule matched'],
    ['https://www.example.com/', GW, 'no rule matched'],
    ['http://WWW.Example.COM/', GW, 'no rule matched'],
  ];
  for (const [url, want, why] of cases) {
    const a = await ask(files, dflt, url);
    t.equal(a.result, want, url);
    t.match(explainAnswer(a, dflt.rules), why, `${url}: ${why}`);
  }
});

t.test('no DNS lookup decides a rule: isInNet is called only for IPv4 literals', async (t) => {
  const { files } = await prepare(base);
  for (const url of ['http://www.example.com/', 'http://a.corp.example/', 'http://[fd00::1]/', 'http://ip.tollgate.test/']) {
    const a = await ask(files, files.fallback!, url);
    t.same(
      a.calls.filter((c) => c.fn === 'isInNet'),
      [],
      `${url}: no isInNet`,
    );
  }
  const a = await ask(files, files.fallback!, 'http://8.8.4.4/');
  t.ok(a.calls.some((c) => c.fn === 'isInNet' && c.args[0] === '8.8.4.4'), 'an IPv4 literal is tested with isInNet');
});

t.test('per-location gateways: the location PAC, and /proxy.pac by where the client is', async (t) => {
  const { files } = await prepare(base);
  const branch = files.select('/Branch.pac', null)!;
  t.equal(branch.label, 'location "Branch"');
  t.equal((await ask(files, branch, 'http://www.example.com/')).result, BRANCH_GW);
  t.equal((await ask(files, branch, 'http://a.corp.example/')).result, 'DIRECT', 'the bypass list holds for every location');
  t.equal(files.select('/proxy.pac', 'Branch'), branch, '/proxy.pac from a client at Branch');
  t.equal(files.select('/wpad.dat', 'branch'), branch);
  t.equal(files.select('/proxy.pac', 'HQ'), files.fallback, 'HQ has no gateways of its own');
  t.equal(files.select('/HQ.pac', null), files.fallback);
  t.equal(files.select('/no-such-name.pac', 'Branch'), files.fallback, 'an unknown name gets the default PAC');
  t.equal(files.select('/%ZZ.pac', null), files.fallback, 'a malformed escape gets the default PAC');
  t.equal((await ask(files, files.fallback!, 'http://www.example.com/')).result, GW);
});

t.test('a config value cannot inject script', async (t) => {
  const attempts: [string, ConfigInput][] = [
    ['bypass', { pac: { bypass: ['a.com"); return "DIRECT"; ("'] } }],
    ['bypass', { pac: { bypass: ['*.a.com\nreturn "DIRECT";'] } }],
    ['bypass', { pac: { bypass: ['10.0.0.0/8", "0.0.0.0'] } }],
    ['gateways', { pac: { gateways: ['evil:80"; return "DIRECT'] } }],
    ['gateways', { pac: { gateways: ['a.example:80; DIRECT'] } }],
    ['gateways', { pac: { gateways: ['a.example:0'] } }],
    ['cloud', { cloud: 'x.test"+alert(1)+"' }],
  ];
  for (const [what, input] of attempts) {
    t.throws(() => validateConfig({ ...base, ...input, pac: { ...base.pac, ...(input.pac ?? {}) } }), ConfigError, `${what}: ${JSON.stringify(input)}`);
  }
  // Location names are free text, and one appears in its PAC's comment: it stays a comment.
  for (const name of ['x\nreturn "DIRECT";\n//', 'x\u2028return "DIRECT";//', 'x*/ return "DIRECT"; /*', 'x\\']) {
    const input: ConfigInput = { ...base, locations: [{ name, ips: ['192.0.2.0/24'] }], pac: { ...base.pac, locations: [{ name, gateways: ['q.example:1'] }] } };
    const { files } = await prepare(input);
    const v = files.forLocation(name)!;
    t.equal((await ask(files, v, 'http://www.example.com/')).result, 'PROXY q.example:1', `${jsString(name)} is not code`);
    t.notMatch(files.text(v, '192.0.2.1'), /[^\x09\x0a\x20-\x7e]/, 'the file is plain ASCII');
  }
  t.equal(jsString('a"b\\c\u2028d\u00e9'), '"a\\"b\\\\c\\u2028d\\u00e9"');
});

t.test('plainHostsDirect and privateRangesDirect can be turned off', async (t) => {
  const { files } = await prepare({ ...base, pac: { ...base.pac, plainHostsDirect: false, privateRangesDirect: false } });
  for (const url of ['http://intranet/', 'http://10.1.2.3/', 'http://[fd00::1]/']) t.equal((await ask(files, files.fallback!, url)).result, GW, url);
  t.equal((await ask(files, files.fallback!, 'http://x.corp.example/')).result, 'DIRECT', 'the bypass list still holds');
});

t.test('without pac.gateways the proxy listener is the gateway, unless no browser can use its address', async (t) => {
  const one = await prepare({ listeners: { proxy: '192.0.2.1:8080' } });
  t.equal((await ask(one.files, one.files.fallback!, 'http://www.example.com/')).result, 'PROXY 192.0.2.1:8080');
  const none = await prepare({ listeners: { proxy: '0.0.0.0:8080' } });
  t.equal(none.files.fallback, null);
  t.match(none.files.unavailable, /pac\.gateways is not set/);
});

t.test('a custom PAC file gets each variable substituted; ${SRCIP} per client, cached', async (t) => {
  const file = join(dir, 'custom.pac');
  writeFileSync(
    file,
    `function FindProxyForURL(url, host) {
  if (host == "gw") return "PROXY \${GATEWAY}:9400";
  if (host == "second") return "PROXY \${SECONDARY_GATEWAY}:9400";
  if (host == "hostport") return "PROXY \${GATEWAY_HOST}";
  if ("\${SRCIP}" == "192.0.2.200") return "DIRECT";
  return "PROXY \${GATEWAY_HOST}; PROXY \${SECONDARY_GATEWAY}:9400";
}
`,
  );
  const { files, warnings } = await prepare({ ...base, pac: { ...base.pac, file } });
  t.same(warnings, []);
  const v = files.fallback!;
  t.equal(v.source, file);
  t.equal((await ask(files, v, 'http://gw/')).result, 'PROXY p1.example.net:9400');
  t.equal((await ask(files, v, 'http://second/')).result, 'PROXY p2.example.net:9400');
  t.equal((await ask(files, v, 'http://hostport/')).result, 'PROXY p1.example.net:9400');
  t.equal((await ask(files, v, 'http://www.example.com/', '192.0.2.200')).result, 'DIRECT', '${SRCIP} is the client');
  t.equal((await ask(files, v, 'http://www.example.com/', '192.0.2.201')).result, 'PROXY p1.example.net:9400; PROXY p2.example.net:9400');
  t.match(files.text(v, '192.0.2.200'), '"192.0.2.200" == "192.0.2.200"');
  t.equal(files.text(v, '192.0.2.200'), files.text(v, '192.0.2.200'), 'the same text for the same client');
  // The branch location uses the same file with its own gateways.
  const branch = files.select('/branch.pac', null)!;
  t.equal((await ask(files, branch, 'http://second/')).result, 'PROXY 192.0.2.53:9400');
  t.equal((await ask(files, branch, 'http://hostport/')).result, 'PROXY branch-1.example.net:3128');
});

t.test('a PAC that does not compile, throws, loops or answers a non-string blocks the activation with the reason', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['syntax', 'function FindProxyForURL(url, host) { return "DIRECT" +; }', /does not compile: .*Unexpected token/],
    ['no function', 'var x = 1;', /does not compile: .*FindProxyForURL/],
    ['throws', 'function FindProxyForURL(url, host) { if (host == "www.example.com") throw new Error("boom"); return "DIRECT"; }', /threw: .*boom/],
    ['undefined call', 'function FindProxyForURL(url, host) { return notAFunction(host); }', /threw: ReferenceError/],
    ['loops', 'function FindProxyForURL(url, host) { for (;;) {} }', /threw: InternalError: interrupted/],
    ['number', 'function FindProxyForURL(url, host) { return 42; }', /returned number, not a string/],
    ['undefined', 'function FindProxyForURL(url, host) { }', /returned undefined, not a string/],
    ['garbage', 'function FindProxyForURL(url, host) { return "GO FAST"; }', /"GO FAST", which is not a list of DIRECT/],
  ];
  for (const [name, text, reason] of cases) {
    const file = join(dir, `${name}.pac`);
    writeFileSync(file, text);
    const err = await prepare({ ...base, pac: { ...base.pac, file } }).then(
      () => null,
      (e: unknown) => e,
    );
    t.type(err, ConfigError, name);
    t.match((err as ConfigError).errors.join('\n'), reason, name);
  }
  const missing = await prepare({ ...base, pac: { ...base.pac, file: join(dir, 'absent.pac') } }).catch((e: ConfigError) => e.errors.join('\n'));
  t.match(missing, /pac\.file: cannot read .*ENOENT/);
});

t.test("Okta's multi-pattern shExpMatch tests only the first pattern, and activation warns about it", async (t) => {
  const file = join(dir, 'okta.pac');
  writeFileSync(file, 'function FindProxyForURL(url, host) { if (shExpMatch(host, "*.okta.com", "*.oktacdn.com")) return "DIRECT"; return "PROXY ${GATEWAY_HOST}"; }');
  const { files, warnings } = await prepare({ ...base, pac: { ...base.pac, file } });
  t.equal((await ask(files, files.fallback!, 'http://a.okta.com/')).result, 'DIRECT');
  t.equal((await ask(files, files.fallback!, 'http://a.oktacdn.com/')).result, 'PROXY p1.example.net:9400', 'the second pattern is never tested');
  t.match(warnings.join('\n'), /shExpMatch was called with 2 patterns; it tests only the first/);
});

t.test('the example config generates the golden example in pac/ (regenerate with `tollgate pac show --config examples/tollgate.yaml`)', async (t) => {
  const root = join(import.meta.dirname, '../..');
  const config = await loadConfig(join(root, 'examples/tollgate.yaml'));
  const { files } = await preparePac(config, { baseDir: join(root, 'examples'), source: 'examples/tollgate.yaml' });
  t.equal(files.text(files.fallback!, '192.0.2.1'), readFileSync(join(root, 'pac/example.golden.pac'), 'utf8'));
});
