/**
 * launch: start the serving process with the V8 limits that only a command line can set.
 *
 *   node dist/src/cli.js start ...  ->  execve(node --max-semi-space-size=4 dist/src/cli.js start ...)
 *
 * V8 sizes its young generation when the isolate is made, so `--max-semi-space-size` works only at
 * launch (setFlagsFromString later is ignored). Left alone, V8 grows each of the young generation's
 * two semi-spaces to 16 MiB under load: 32 MiB of RSS that a proxy, whose garbage dies within one
 * request, does not need. `tollgate start` therefore replaces its own process image, the same PID, the
 * same arguments, environment and stdio, with one started with the flag. A process manager, a
 * container runtime or a test that holds the PID sees nothing but a slightly longer start.
 *
 * It does nothing when the flag is already there (on the command line, in NODE_OPTIONS, or set by an
 * operator to a value of their own: theirs wins), and it never replaces the process twice. Where
 * execve cannot be had (not Linux, no koffi), start goes on as it is and says so once.
 */
import { createRequire } from 'node:module';

/** SEMI_SPACE_MIB is each young-generation semi-space's ceiling, in MiB (V8's default here is 16). */
export const SEMI_SPACE_MIB = 4;
/** SEMI_SPACE_FLAG is node's option for that ceiling. */
export const SEMI_SPACE_FLAG = '--max-semi-space-size';
/** RELAUNCHED marks the replaced process, so a flag that somehow did not stick cannot loop. */
const RELAUNCHED = 'TOLLGATE_RELAUNCHED';

/** LaunchState is what the process was started with, as relaunchArgs reads it. */
export interface LaunchState {
  readonly execPath: string;
  readonly execArgv: readonly string[];
  /** process.argv: the node binary, the script, then the script's arguments. */
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

/** hasFlag tells whether `--max-semi-space-size` is among node's options, either spelling. */
function hasFlag(options: readonly string[]): boolean {
  return options.some((o) => o === SEMI_SPACE_FLAG || o.startsWith(`${SEMI_SPACE_FLAG}=`) || o === '--max_semi_space_size' || o.startsWith('--max_semi_space_size='));
}

/**
 * relaunchArgs gives the argv to replace this process with, or null when it already has what it needs.
 * The script and its arguments come after node's own options, unchanged.
 */
export function relaunchArgs(s: LaunchState): string[] | null {
  if (s.env[RELAUNCHED] !== undefined) return null;
  if (hasFlag(s.execArgv)) return null;
  if (hasFlag((s.env.NODE_OPTIONS ?? '').split(/\s+/))) return null;
  return [s.execPath, `${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`, ...s.execArgv, ...s.argv.slice(1)];
}

type Execve = (path: string, argv: readonly (string | null)[], envp: readonly (string | null)[]) => number;
type Fcntl = (fd: number, cmd: number, arg: number) => number;
type Errno = () => number;

/** F_SETFD with 0 clears FD_CLOEXEC (<fcntl.h>); Node marks its stdio close-on-exec. */
const F_SETFD = 2;

/** bindLibc loads execve and fcntl through koffi, or says why it cannot. */
function bindLibc(): { execve: Execve; fcntl: Fcntl; errno: Errno } | string {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    return {
      execve: libc.func('int execve(const char *path, const char **argv, const char **envp)') as unknown as Execve,
      // fcntl is variadic; one int argument passes the same way on Linux's calling conventions.
      fcntl: libc.func('int fcntl(int fd, int cmd, int arg)') as unknown as Fcntl,
      errno: () => koffi.errno(),
    };
  } catch (err) {
    return `koffi could not bind execve: ${(err as Error).message}`;
  }
}

/**
 * relaunch replaces this process with one started with the young-generation ceiling, when it lacks
 * it. It does not return when it succeeds; otherwise it returns why not (null: nothing to do).
 */
export function relaunch(state: LaunchState = process): string | null {
  const args = relaunchArgs(state);
  if (args === null) return null;
  const env = [...Object.entries(state.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])), `${RELAUNCHED}=1`];
  const libc = bindLibc();
  if (typeof libc === 'string') return libc;
  for (const fd of [0, 1, 2]) libc.fcntl(fd, F_SETFD, 0);
  libc.execve(state.execPath, [...args, null], [...env, null]);
  return `execve ${state.execPath} failed (errno ${libc.errno()})`;
}
