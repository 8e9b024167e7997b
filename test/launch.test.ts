/**
 * launch: `tollgate start` replaces its own process with one whose young generation is capped, the
 * same PID and arguments, unless the flag is already set; relaunchArgs decides when.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { relaunchArgs, SEMI_SPACE_FLAG, SEMI_SPACE_MIB } from '../src/launch.js';

const MiB = 1 << 20;
const CHILD = fileURLToPath(new URL('./helpers/launch-child.ts', import.meta.url));

t.test('relaunchArgs adds the flag before node options, script and arguments', async (t) => {
  const state = { execPath: '/usr/bin/node', execArgv: ['--import', 'tsx'], argv: ['/usr/bin/node', '/app/cli.js', 'start', '--config', 'x.yaml'], env: {} };
  t.same(relaunchArgs(state), ['/usr/bin/node', `${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`, '--import', 'tsx', '/app/cli.js', 'start', '--config', 'x.yaml']);
  t.same(relaunchArgs({ ...state, execArgv: [] }), ['/usr/bin/node', `${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`, '/app/cli.js', 'start', '--config', 'x.yaml']);
});

t.test('an operator\'s own flag wins, and a relaunched process is never relaunched again', async (t) => {
  const base = { execPath: '/usr/bin/node', execArgv: [] as string[], argv: ['/usr/bin/node', '/app/cli.js', 'start'], env: {} as NodeJS.ProcessEnv };
  for (const execArgv of [['--max-semi-space-size=16'], ['--max_semi_space_size=2'], ['--max-semi-space-size', '8']]) {
    t.equal(relaunchArgs({ ...base, execArgv }), null, execArgv.join(' '));
  }
  t.equal(relaunchArgs({ ...base, env: { NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=8' } }), null, 'in NODE_OPTIONS');
  t.not(relaunchArgs({ ...base, env: { NODE_OPTIONS: '--enable-source-maps' } }), null, 'other NODE_OPTIONS do not count');
  t.equal(relaunchArgs({ ...base, env: { TOLLGATE_RELAUNCHED: '1' } }), null, 'marked as relaunched');
});

interface Report {
  pid: number;
  execArgv: string[];
  args: string[];
  why: string | null;
  newSpace: number;
  kept: number;
}

/** run starts the child with node options `opts` and answers with its pid and report. */
async function run(opts: string[]): Promise<{ pid: number; report: Report; stderr: string }> {
  const p = spawn(process.execPath, [...opts, '--import', 'tsx', CHILD, 'one', 'two words'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve) => p.once('exit', resolve));
  if (code !== 0) throw new Error(`child exited ${code}: ${stderr}`);
  return { pid: p.pid!, report: JSON.parse(out) as Report, stderr };
}

t.test('a process without the flag becomes one with it: same PID, arguments and stdio', async (t) => {
  const { pid, report } = await run([]);
  t.equal(report.pid, pid, 'the same process');
  t.equal(report.why, null, 'relaunch had nothing left to do in the new image');
  t.same(report.execArgv.slice(0, 1), [`${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`]);
  t.ok(report.execArgv.includes('tsx'), 'node options kept');
  t.same(report.args, ['one', 'two words'], 'arguments kept');
  t.equal(report.kept, 2_000_000);
  t.ok(report.newSpace <= 2 * SEMI_SPACE_MIB * MiB, `young generation ${report.newSpace / MiB} MiB, at most 2 x ${SEMI_SPACE_MIB}`);
});

t.test('with an operator\'s flag the process is left as it is', async (t) => {
  const { pid, report } = await run(['--max-semi-space-size=16']);
  t.equal(report.pid, pid);
  t.same(report.execArgv.slice(0, 1), ['--max-semi-space-size=16']);
  t.notOk(report.execArgv.includes(`${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`));
  t.ok(report.newSpace > 2 * SEMI_SPACE_MIB * MiB, `young generation ${report.newSpace / MiB} MiB: the retained objects grow it past the cap when nothing holds it`);
});
