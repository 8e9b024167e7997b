/**
 * transpile: src/ as plain ESM JavaScript, for tests of code paths that only the built modules take
 * (a sidecar child is a plain `node` process: it cannot load TypeScript sources).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Test } from 'tap';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** transpile writes src/**.ts as ESM JavaScript under `out`, keeping the tree (node_modules resolve from the repo). */
export function transpile(out: string): void {
  const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []));
  for (const file of walk(SRC)) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false }, fileName: file }).outputText;
    const dest = join(out, relative(SRC, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
}

/**
 * builtSrc transpiles src/ into a directory of this test's own, removed in teardown, and answers
 * with it. It is under .tap/ (git-ignored), so the built modules find node_modules beside the repo.
 */
export function builtSrc(t: Test, name: string): string {
  const out = fileURLToPath(new URL(`../../.tap/${name}-build-${process.pid}/`, import.meta.url));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  transpile(out);
  return out;
}
