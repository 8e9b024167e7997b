/**
 * cli: running the `tollgate` command as a separate process in tests.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** CLI is the command's source, run through tsx. */
export const CLI = join(import.meta.dirname, '../../src/cli.ts');

/** runCli starts the CLI as a process and collects its output; a hung CLI is killed after 30 s. */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = setTimeout(() => p.kill('SIGKILL'), 30_000);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
