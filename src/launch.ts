/**
 * launch: start the serving process with the V8 settings that only a command line can make.
 *
 *   node dist/src/cli.js start ...
 *     -> execve(node --max-semi-space-size=4 --no-memory-reducer dist/src/cli.js start ...)
 *
 * V8 reads both when the isolate is made; setFlagsFromString later is ignored.
 * - `--max-semi-space-size=4`: left alone, V8 grows each of the young generation's two semi-spaces
 *   to 16 MiB under load, 32 MiB of RSS that a proxy, whose garbage dies within one request, does not
 *   need.
 * - `--no-memory-reducer`: the memory reducer collects and gives pages back while the process is
 *   idle (it was made for background browser tabs). The next burst of traffic then faults them in
 *   again and regrows the heap, and its first seconds were the slowest: p99 two to ten times that
 *   of the same load a moment later. A proxy keeps what its last load needed instead, as squid does.
 *
 * `tollgate start` therefore replaces its own process image, the same PID, arguments, environment and
 * stdio, with one started with what it lacks. A process manager, a container runtime or a test that
 * holds the PID sees nothing but a slightly longer start. An option the operator set themselves (on
 * node's command line, `--x` or `--no-x`, or in NODE_OPTIONS where node allows it) is theirs, and is
 * left as it is. The process is never replaced twice, nor one with an IPC channel to its parent
 * (execve would cut it; a cluster worker already has the primary's options). Where execve cannot be
 * had (not Linux, no koffi), start goes on as it is and says so once.
 */
import { createRequire } from 'node:module';

/** SEMI_SPACE_MIB is each young-generation semi-space's ceiling, in MiB (V8's default here is 16). */
export const SEMI_SPACE_MIB = 4;

/** LAUNCH_OPTIONS are V8's option names a serving process is started with, and the argument for each. */
export const LAUNCH_OPTIONS: readonly { readonly name: string; readonly arg: string }[] = [
  { name: 'max-semi-space-size', arg: `--max-semi-space-size=${SEMI_SPACE_MIB}` },
  { name: 'memory-reducer', arg: '--no-memory-reducer' },
];

/** RELAUNCHED marks the replaced process with its PID, so an option that somehow did not stick cannot loop. */
const RELAUNCHED = 'TOLLGATE_RELAUNCHED';

/** LaunchState is what the process was started with, as relaunchArgs reads it. */
export interface LaunchState {
  readonly pid: number;
  readonly execPath: string;
  readonly execArgv: readonly string[];
  /** process.argv: the node binary, the script, then the script's arguments. */
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Set when the process has an IPC channel to its parent (fork, a cluster worker): execve would cut it. */
  readonly channel?: unknown;
}

/** setBy tells whether V8 option `name` is among `options`: `--name`, `--no-name`, `--name=v`, dashes or underscores. */
function setBy(options: readonly string[], name: string): boolean {
  return options.some((o) => {
    const flag = o.replace(/=.*$/s, '').replaceAll('_', '-');
    return flag === `--${name}` || flag === `--no-${name}`;
  });
}

/**
 * nodeOptionWords splits NODE_OPTIONS into words well enough to find an option's name: node lets
 * each be double-quoted (`"--max-semi-space-size=8"`), and the quotes are not part of the name.
 */
function nodeOptionWords(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).map((w) => w.replaceAll('"', ''));
}

/** relaunched tells whether this process is the one relaunch started (the marker holds its own PID). */
function relaunched(s: LaunchState): boolean {
  return s.env[RELAUNCHED] === String(s.pid);
}

/**
 * relaunchArgs gives the argv to replace this process with, or null when it already has what it needs.
 * What it lacks goes first; node's own options, the script and its arguments follow, unchanged.
 */
export function relaunchArgs(s: LaunchState): string[] | null {
  if (relaunched(s)) return null;
  const given = [...s.execArgv, ...nodeOptionWords(s.env.NODE_OPTIONS)];
  const missing = LAUNCH_OPTIONS.filter((o) => !setBy(given, o.name)).map((o) => o.arg);
  if (missing.length === 0) return null;
  return [s.execPath, ...missing, ...s.execArgv, ...s.argv.slice(1)];
}

type Execve = (path: string, argv: readonly (string | null)[], envp: readonly (string | null)[]) => number;
type Fcntl = (fd: number, cmd: number, type: 'int', arg: number) => number;
type Errno = () => number;

/** F_SETFD with 0 clears FD_CLOEXEC (<fcntl.h>); Node marks its stdio close-on-exec. */
const F_SETFD = 2;
/** EBADF: the descriptor is not open, so there is nothing of it to keep. */
const EBADF = 9;

/** bindLibc loads execve and fcntl through koffi, or says why it cannot. */
function bindLibc(): { execve: Execve; fcntl: Fcntl; errno: Errno } | string {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    // glibc's name; musl's loader answers to it too. Failing that, the symbols this process already has.
    let libc: ReturnType<typeof koffi.load>;
    try {
      libc = koffi.load('libc.so.6');
    } catch {
      libc = koffi.load(null as unknown as string);
    }
    return {
      execve: libc.func('int execve(const char *path, const char **argv, const char **envp)') as unknown as Execve,
      fcntl: libc.func('int fcntl(int fd, int cmd, ...)') as unknown as Fcntl,
      errno: () => koffi.errno(),
    };
  } catch (err) {
    return `koffi could not bind execve: ${(err as Error).message}`;
  }
}

/**
 * relaunch replaces this process with one started with what LAUNCH_OPTIONS it lacks. It does not
 * return when it succeeds; otherwise it returns why not (null: nothing to do). In the relaunched
 * process it takes the marker out of the environment, so no child of it inherits the marker.
 */
export function relaunch(state: LaunchState = process): string | null {
  if (relaunched(state)) {
    delete state.env[RELAUNCHED];
    return null;
  }
  const args = relaunchArgs(state);
  if (args === null) return null;
  if (state.channel !== undefined) return 'it has an IPC channel to its parent, which execve would cut';
  const env = [...Object.entries(state.env).flatMap(([k, v]) => (v === undefined || k === RELAUNCHED ? [] : [`${k}=${v}`])), `${RELAUNCHED}=${state.pid}`];
  const libc = bindLibc();
  if (typeof libc === 'string') return libc;
  for (const fd of [0, 1, 2]) {
    if (libc.fcntl(fd, F_SETFD, 'int', 0) !== 0 && libc.errno() !== EBADF) return `fcntl(${fd}, F_SETFD) failed (errno ${libc.errno()})`;
  }
  libc.execve(state.execPath, [...args, null], [...env, null]);
  return `execve ${state.execPath} failed (errno ${libc.errno()})`;
}
