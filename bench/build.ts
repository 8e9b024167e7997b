/**
 * build: the benches measure dist/, so they make sure it is built from this tree first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '..');

/** BenchError is an expected failure: its message is the whole story, no stack needed. */
export class BenchError extends Error {}

/** BASE_OPTIONS are the command-line options every round-based bench takes (parseArgs form). */
export const BASE_OPTIONS = { rounds: { type: 'string' }, quick: { type: 'boolean' }, 'no-build': { type: 'boolean' } } as const;

/** RunBase is what those options decide: rounds, the quiet-machine budget, and whether to build. */
export interface RunBase {
  readonly rounds: number;
  readonly quietWaitMs: number;
  readonly quietBudgetMs: number;
  readonly retries: number;
  readonly build: boolean;
}

/** runBase reads BASE_OPTIONS' values; `quick` also tells the caller to shorten its own phases. */
export function runBase(values: { readonly rounds?: string; readonly quick?: boolean; readonly 'no-build'?: boolean }): { quick: boolean; base: RunBase } {
  const quick = values.quick === true;
  const rounds = values.rounds !== undefined ? Number(values.rounds) : quick ? 1 : 3;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new BenchError('--rounds must be 1..10');
  return {
    quick,
    base: { rounds, quietWaitMs: 10_000, quietBudgetMs: quick ? 20_000 : 45_000, retries: quick ? 4 : 8, build: values['no-build'] !== true },
  };
}

/** progress is a bench's running commentary, on stderr so stdout stays the report. */
export function progress(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/**
 * ensureBuild rebuilds dist/ when it is missing or older than a file under src/, so the bench
 * measures this tree; a tree that does not compile stops the bench (with `build` false, the
 * dist/ that is there is measured). It returns what the report should say about the build.
 */
export function ensureBuild(build: boolean, progress: (msg: string) => void): string {
  const cli = path.join(REPO, 'dist', 'src', 'cli.js');
  const built = existsSync(cli) ? statSync(cli).mtimeMs : 0;
  const newest = (readdirSync(path.join(REPO, 'src'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .reduce((m, f) => Math.max(m, statSync(path.join(REPO, 'src', f)).mtimeMs), 0);
  if (built >= newest) return 'dist/ up to date with src/';
  if (!build) return 'dist/ OLDER than src/ (--no-build): measuring the existing build';
  progress('dist/ is missing or older than src/: running npm run build');
  try {
    execFileSync('npm', ['run', 'build'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new BenchError(`npm run build failed, so there is nothing current to measure (--no-build measures dist/ as it is):\n${out}`);
  }
  return 'dist/ rebuilt from src/';
}
