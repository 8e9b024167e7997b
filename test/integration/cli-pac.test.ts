/**
 * `tollgate pac test` and `tollgate pac show`, offline: on a config file (the PAC it would serve)
 * and on a given PAC file. A few runs are real processes of the CLI; the rest call the same
 * command in this process, since each process start costs seconds.
 */
import t from 'tap';
import { runCli as run } from '../helpers/cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pacCommand } from '../../src/pac/command.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-pac-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));


/** command runs `tollgate pac ...` in this process with its output captured. */
async function command(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await pacCommand(args, { out: { write: (s: string) => (stdout += s) }, err: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

const config = join(dir, 'tollgate.yaml');
writeFileSync(
  config,
  `locations:
  - { name: HQ, ips: [192.0.2.0/25] }
  - { name: Branch, ips: [192.0.2.128/25] }
hosts: { wiki.lab.test: 10.1.1.1 }
pac:
  gateways: [gw-1.example.net:9400, gw-2.example.net:9400]
  locations: [{ name: Branch, gateways: [branch.example.net:3128] }]
  bypass: ["*.corp.example", 198.51.100.0/24]
`,
);

t.test('pac test on the config: the answer and the rule, by client address or location', async (t) => {
  const cases: [string[], string, string][] = [
    [['https://www.example.com/x'], 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400', 'no rule matched: everything else goes to the gateways, in order'],
    [['http://a.corp.example/'], 'DIRECT', 'bypass list: *.corp.example: shExpMatch("a.corp.example", "*.corp.example")'],
    [['http://198.51.100.9/'], 'DIRECT', 'bypass list: 198.51.100.0/24: isInNet("198.51.100.9", "198.51.100.0", "255.255.255.0")'],
    [['http://printer/'], 'DIRECT', 'plain host name (no dot): isPlainHostName("printer")'],
    [['http://ip.tollgate.test/'], 'PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400', "Tollgate's own hosts *.tollgate.test"],
    [['http://www.example.com/', '--client-ip', '192.0.2.200'], 'PROXY branch.example.net:3128', 'no rule matched'],
    [['http://www.example.com/', '--location', 'branch'], 'PROXY branch.example.net:3128', 'no rule matched'],
  ];
  for (const [args, answer, rule] of cases) {
    const r = await command(['test', ...args, '--config', config]);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stdout, `answer:  ${answer}\n`, args.join(' '));
    t.match(r.stdout, `rule:    ${rule}`);
  }
  const where = await run(['pac', 'test', 'http://www.example.com/', '--client-ip', '192.0.2.200', '--config', config]);
  t.equal(where.code, 0, 'as a process');
  t.match(where.stdout, 'answer:  PROXY branch.example.net:3128\n');
  t.match(where.stdout, 'client:  192.0.2.200 (location Branch)');
  t.match(where.stdout, 'PAC:     location "Branch" PAC (generated)');
});

t.test('pac test on a given file: variables filled from the config, the last condition that held', async (t) => {
  const pac = join(dir, 'custom.pac');
  writeFileSync(
    pac,
    `function FindProxyForURL(url, host) {
  if (shExpMatch(host, "*.okta.com", "*.oktacdn.com")) return "DIRECT";
  if (isInNet(host, "10.0.0.0", "255.0.0.0")) return "DIRECT";
  if ("\${SRCIP}" == "192.0.2.7") return "PROXY special.example.net:1";
  return "PROXY \${GATEWAY}:9400; PROXY \${SECONDARY_GATEWAY}:9400";
}
`,
  );
  const a = await run(['pac', 'test', 'http://www.example.com/', '--pac', pac, '--config', config]);
  t.equal(a.code, 0);
  t.match(a.stdout, `PAC:     file ${pac}`);
  t.match(a.stdout, 'answer:  PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400\n');
  t.match(a.stdout, 'rule:    no condition held (2 tested)');
  const b = await command(['test', 'http://wiki.lab.test/', '--pac', pac, '--config', config]);
  t.match(b.stdout, 'answer:  DIRECT\n', 'isInNet resolves names through the static hosts map, offline');
  t.match(b.stdout, 'rule:    last condition that held: isInNet("wiki.lab.test", "10.0.0.0", "255.0.0.0")');
  const c = await command(['test', 'http://www.example.com/', '--pac', pac, '--client-ip', '192.0.2.7', '--config', config]);
  t.match(c.stdout, 'answer:  PROXY special.example.net:1\n', '${SRCIP} is --client-ip');
  const d = await command(['test', 'http://a.oktacdn.com/', '--pac', pac, '--config', config]);
  t.match(d.stdout, 'answer:  PROXY gw-1.example.net:9400', 'the second pattern of shExpMatch is never tested');
  t.match(d.stdout, 'warning: shExpMatch was given 2 patterns and tests only the first');
});

t.test('pac test reports a broken file and bad arguments', async (t) => {
  const broken = join(dir, 'broken.pac');
  writeFileSync(broken, 'function FindProxyForURL(url, host) { return 7; }');
  const r = await command(['test', 'http://www.example.com/', '--pac', broken, '--config', config]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'problem: FindProxyForURL returned number, not a string');
  const s = await command(['test', 'http://www.example.com/', '--pac', join(dir, 'syntax.pac'), '--config', config]);
  t.equal(s.code, 1);
  t.match(s.stderr, 'cannot read');
  const u = await command(['test', 'not a url', '--config', config]);
  t.equal(u.code, 2);
  t.match(u.stderr, '"not a url" is not a URL');
  const l = await command(['test', 'http://x.example/', '--location', 'Mars', '--config', config]);
  t.equal(l.code, 2);
  t.match(l.stderr, 'no location is named "Mars" (HQ, Branch)');
});

t.test('pac show prints the PAC a location gets', async (t) => {
  const d = await run(['pac', 'show', '--config', config]);
  t.equal(d.code, 0);
  t.match(d.stdout, /^\/\/ Tollgate PAC file/);
  t.match(d.stdout, 'var proxies = "PROXY gw-1.example.net:9400; PROXY gw-2.example.net:9400";');
  t.match(d.stdout, 'if (shExpMatch(host, "*.corp.example")) return "DIRECT";');
  const b = await command(['show', '--location', 'Branch', '--config', config]);
  t.match(b.stdout, 'var proxies = "PROXY branch.example.net:3128";');
});
