/**
 * check: an activation's PAC files are validated in a worker thread, which gives the answers the
 * same check gives in this thread. The worker path is the built one (JavaScript beside checker.js),
 * so this test transpiles src/ to JavaScript first, with TypeScript's own transpiler, and runs it.
 */
import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import type { PacCheckJob, PacCheckResult } from '../../src/pac/check.js';
import { checkAll } from '../../src/pac/checker.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** transpile writes src/**.ts as ESM JavaScript under `out`, keeping the tree (node_modules resolve from the repo). */
function transpile(out: string): void {
  const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []));
  for (const file of walk(SRC)) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false }, fileName: file }).outputText;
    const dest = join(out, relative(SRC, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
}

const job: PacCheckJob = {
  checks: [
    { label: 'good', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { return isPlainHostName(host) ? "DIRECT" : "PROXY gw.example.net:9400"; }' }] },
    { label: 'throws', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { throw new Error("no"); }' }] },
    { label: 'bad answer', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { return "SOCKS"; }' }] },
    { label: 'two patterns', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { return shExpMatch(host, "*.okta.com", "*.oktacdn.com") ? "DIRECT" : "PROXY a:1"; }' }] },
    { label: 'does not compile', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) {' }] },
  ],
  urls: ['http://intranet/', 'https://www.example.com/', 'http://login.okta.com/'],
  hosts: [],
};

t.test('the check in a worker thread answers as the same check in this thread', async (t) => {
  // Under .tap/ (git-ignored), so that the built modules find node_modules beside the repo.
  const out = fileURLToPath(new URL(`../../.tap/pac-build-${process.pid}/`, import.meta.url));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  transpile(out);
  const built = (await import(pathToFileURL(join(out, 'pac', 'check.js')).href)) as { checkInWorker(job: PacCheckJob): Promise<PacCheckResult> };
  const inWorker = await built.checkInWorker(job);
  const here = await checkAll(job);
  t.same(inWorker, here, 'same errors and warnings, in the same order');
  t.equal(here.errors.filter((e) => e.startsWith('good')).length, 0, 'the good file passes');
  t.ok(here.errors.some((e) => e.startsWith('throws: ')), 'a throwing file is reported');
  t.ok(here.errors.some((e) => e.startsWith('bad answer: ')), 'a bad answer is reported');
  t.ok(here.errors.some((e) => e.startsWith('does not compile: ')), 'a file that does not compile is reported');
  t.ok(here.warnings.some((w) => w.startsWith('two patterns: ')), 'shExpMatch with two patterns warns');
});
