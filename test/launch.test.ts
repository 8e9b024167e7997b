/**
 * launch: `tollgate start` replaces its own process with one whose young generation is capped, the
 * same PID and arguments, unless the flag is already set; relaunchArgs decides when.
 */
import t from 'tap';
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { relaunchArgs, SEMI_SPACE_MIB } from '../src/launch.js';

const MiB = 1 << 20;
const SEMI = `--max-semi-space-size=${SEMI_SPACE_MIB}`;
const BOTH = [SEMI, '--no-memory-reducer'];
const CHILD = fileURLToPath(new URL('./helpers/launch-child.ts', import.meta.url));

t.test('relaunchArgs adds the options before node options, script and arguments', async (t) => {
  const state = { pid: 4242, execPath: '/usr/bin/node', execArgv: ['--import', 'tsx'], argv: ['/usr/bin/node', '/app/cli.js', 'start', '--config', 'x.yaml'], env: {} };
  t.same(relaunchArgs(state), ['/usr/bin/node', ...BOTH, '--import', 'tsx', '/app/cli.js', 'start', '--config', 'x.yaml']);
  t.same(relaunchArgs({ ...state, execArgv: [] }), ['/usr/bin/node', ...BOTH, '/app/cli.js', 'start', '--config', 'x.yaml']);
});

t.test('an operator\'s own options win, and a relaunched process is never relaunched again', async (t) => {
  const base = { pid: 4242, execPath: '/usr/bin/node', execArgv: [] as string[], argv: ['/usr/bin/node', '/app/cli.js', 'start'], env: {} as NodeJS.ProcessEnv };
  const argsWith = (execArgv: string[], env: NodeJS.ProcessEnv = {}) => relaunchArgs({ ...base, execArgv, env })?.slice(1, -2);
  for (const execArgv of [['--max-semi-space-size=16'], ['--max_semi_space_size=2']]) {
    t.same(argsWith(execArgv), ['--no-memory-reducer', ...execArgv], `${execArgv.join(' ')}: only the other option is added`);
  }
  for (const execArgv of [['--memory-reducer'], ['--no_memory_reducer']]) {
    t.same(argsWith(execArgv), [SEMI, ...execArgv], `${execArgv.join(' ')}: only the semi-space ceiling is added`);
  }
  t.equal(relaunchArgs({ ...base, execArgv: ['--max-semi-space-size=16', '--memory-reducer'] }), null, 'both set: nothing to do');
  // NODE_OPTIONS takes the semi-space ceiling (node refuses --[no-]memory-reducer there), bare or quoted.
  t.same(argsWith([], { NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=8' }), ['--no-memory-reducer'], 'in NODE_OPTIONS');
  t.same(argsWith([], { NODE_OPTIONS: '"--max-semi-space-size=8" --enable-source-maps' }), ['--no-memory-reducer'], 'quoted in NODE_OPTIONS');
  t.same(argsWith([], { NODE_OPTIONS: '--enable-source-maps' }), BOTH, 'other NODE_OPTIONS do not count');
  t.equal(relaunchArgs({ ...base, env: { TOLLGATE_RELAUNCHED: '4242' } }), null, 'marked as relaunched with its own PID');
  t.same(argsWith([], { TOLLGATE_RELAUNCHED: '17' }), BOTH, 'a marker inherited from another process does not count');
});

interface Report {
  pid: number;
  stdin: string;
  marker: string | null;
  execArgv: string[];
  args: string[];
  why: string | null;
  newSpace: number;
  kept: number;
}

/** run starts the child with node options `opts`, writes `stdin` to it, and answers with its pid and report. */
async function run(opts: string[], env: NodeJS.ProcessEnv = {}, stdin = ''): Promise<{ pid: number; report: Report; stderr: string }> {
  const p = spawn(process.execPath, [...opts, '--import', 'tsx', CHILD, 'one', 'two words'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  p.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => p.once('exit', resolve));
  if (code !== 0) throw new Error(`child exited ${code}: ${stderr}`);
  return { pid: p.pid!, report: JSON.parse(out) as Report, stderr };
}

t.test('a process without the options becomes one with them: same PID, arguments and stdio', async (t) => {
  const { pid, report } = await run([], {}, 'read after the relaunch\n');
  t.equal(report.pid, pid, 'the same process');
  t.equal(report.why, null, 'relaunch had nothing left to do in the new image');
  t.same(report.execArgv.slice(0, 2), BOTH);
  t.ok(report.execArgv.includes('tsx'), 'node options kept');
  t.same(report.args, ['one', 'two words'], 'arguments kept');
  t.equal(report.stdin, 'read after the relaunch\n', 'stdin kept (and stdout: this report came through it)');
  t.equal(report.marker, null, 'the marker is gone from the environment its children would inherit');
  t.equal(report.kept, 2_000_000);
  t.ok(report.newSpace <= 2 * SEMI_SPACE_MIB * MiB, `young generation ${report.newSpace / MiB} MiB, at most 2 x ${SEMI_SPACE_MIB}`);
});

t.test('with an operator\'s options the process is left as it is', async (t) => {
  const { pid, report } = await run(['--max-semi-space-size=16', '--memory-reducer']);
  t.equal(report.pid, pid);
  t.same(report.execArgv.slice(0, 2), ['--max-semi-space-size=16', '--memory-reducer']);
  t.notOk(report.execArgv.includes(SEMI));
  t.ok(report.newSpace > 2 * SEMI_SPACE_MIB * MiB, `young generation ${report.newSpace / MiB} MiB: the retained objects grow it past the cap when nothing holds it`);
});

t.test('when execve fails, the process goes on as it was and says why', async (t) => {
  const { pid, report } = await run([], { LAUNCH_EXEC: '/nonexistent/node' });
  t.equal(report.pid, pid);
  t.match(report.why, /^execve \/nonexistent\/node failed \(errno 2\)$/);
  t.notOk(report.execArgv.includes(SEMI), 'not relaunched');
  t.ok(report.newSpace > 2 * SEMI_SPACE_MIB * MiB, 'so its young generation is not capped');
});

t.test('a process with an IPC channel to its parent is not relaunched: the channel would be cut', async (t) => {
  const p = fork(CHILD, ['one'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const report = await new Promise<Report>((resolve, reject) => {
    p.once('message', (m) => resolve(m as Report));
    p.once('exit', (code) => reject(new Error(`child exited ${code} without a report`)));
  });
  t.equal(report.pid, p.pid);
  t.equal(report.why, 'it has an IPC channel to its parent, which execve would cut');
  t.notOk(report.execArgv.includes(SEMI));
  await new Promise((resolve) => p.once('exit', resolve));
});
