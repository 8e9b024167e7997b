/**
 * docs/lab-routing.md shows only commands that run: every shell block is marked `# tested` or
 * `# not tested here:`; every command of a tested block is one the lab helper ran for this lab (set-up
 * and REDIRECT rules) or, for the curl checks, one this test runs from the client namespace and sees
 * succeed, through Tollgate's transparent listeners on the REDIRECT ports (the client network is a
 * location without sign-in here; test/integration/lab-transparent.test.ts signs in).
 */
import t from 'tap';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandLog, createLab, run } from '../helpers/netns.js';
import { startOrigin } from '../helpers/standin.js';
import { selfSigned } from '../helpers/tls.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

interface Block {
  readonly info: string;
  readonly line: number;
  readonly lines: string[];
}

/** blocks are the fenced code blocks of a Markdown file, with the line each starts on. */
function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  let cur: Block | null = null;
  markdown.split('\n').forEach((text, i) => {
    const fence = /^```(\S*)/.exec(text);
    if (fence && cur === null) cur = { info: fence[1]!, line: i + 1, lines: [] };
    else if (fence && cur !== null) {
      out.push(cur);
      cur = null;
    } else cur?.lines.push(text);
  });
  return out;
}

const doc = readFileSync(new URL('../../docs/lab-routing.md', import.meta.url), 'utf8');
const all = blocks(doc);

t.test('every code block says whether it is tested', async (t) => {
  t.ok(all.length >= 8, `${all.length} blocks`);
  for (const b of all) {
    if (b.info === 'text' && !b.lines[0]!.startsWith('#')) continue; // a picture, not commands
    t.match(b.lines[0], /^# (tested|not tested here|values)\b/, `block at line ${b.line} starts with its marker`);
  }
});

t.test("the tested commands are the ones the lab ran, and the checks pass", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-lab-doc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const originTls = selfSigned(['origin.lab.test'], []);
  const ca = join(dir, 'origin-ca.pem');
  writeFileSync(ca, originTls.cert);

  const lab = await createLab();
  t.teardown(lab.close);
  await startOrigin(lab, originTls);
  // Dual-stack wildcards: IPv4 and IPv6 connections REDIRECTed to these ports both land here.
  const tg = await startTestTollgate((dataDir) =>
    testConfig(dataDir, {
      listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0', transparentHttp: '[::]:0', transparentTls: '[::]:0' },
      locations: [{ name: 'branch', ips: [`${lab.clientAddress}/32`, `${lab.clientAddress6}/128`] }],
      hosts: { 'origin.lab.test': lab.originAddress },
    }),
  );
  t.teardown(() => tg.close());
  await lab.redirect({ http: tg.transparentHttpPort, tls: tg.transparentTlsPort });

  const vars: Record<string, string> = { ...lab.vars, HTTP_PORT: String(tg.transparentHttpPort), TLS_PORT: String(tg.transparentTlsPort), ORIGIN_CA: ca };
  const values = all.find((b) => b.lines[0] === '# values')!;
  const documented = new Set(values.lines.slice(1).filter((l) => l.trim() !== '').map((l) => /^([A-Z0-9_]+)=/.exec(l)?.[1]));
  t.same([...documented].sort(), Object.keys(vars).sort(), 'the page defines exactly the variables the lab has');

  const substitute = (line: string) =>
    line.replace(/\$([A-Z0-9_]+)/g, (_m, name: string) => {
      if (!(name in vars)) throw new Error(`docs/lab-routing.md uses $${name}, which the lab does not define`);
      return vars[name]!;
    });
  let commands = 0;
  let checks = 0;
  for (const b of all.filter((b) => b.lines[0] === '# tested')) {
    for (const raw of b.lines.slice(1)) {
      if (raw.trim() === '' || raw.startsWith('#')) continue;
      const line = substitute(raw.trim());
      if (/^ip netns exec \S+ curl /.test(line)) {
        const argv = line.split(/\s+/);
        const r = await run(argv.slice(4), argv[3]);
        t.equal(r.code, 0, `${raw}: ${r.stderr}`);
        t.match(r.stdout, /^origin /, `${raw}: reached the origin through Tollgate's transparent listeners`);
        checks++;
      } else {
        t.ok(commandLog.includes(line), `line ${b.line}: ${raw}`);
        commands++;
      }
    }
  }
  t.ok(commands >= 30 && checks === 3, `${commands} set-up commands and ${checks} checks compared`);
  const lines = tg.entries().filter((e) => e.forwardingMethod === 'transparent');
  t.same(
    lines.map((e) => [e.clientIp, e.location, e.protocol, e.host, e.sni ?? null, e.status]),
    [
      [lab.clientAddress, 'branch', 'HTTP', lab.originAddress, null, 200],
      [lab.clientAddress6, 'branch', 'HTTP', lab.originAddress6, null, 200],
      [lab.clientAddress, 'branch', 'SSL', 'origin.lab.test', 'origin.lab.test', 200],
    ],
    'each check is a transparent line: the client by its real address, TLS by the SNI read without consuming the ClientHello',
  );
});
