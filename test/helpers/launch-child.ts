/**
 * launch-child: a process that calls relaunch() at its start, then grows its young generation and
 * reports what it runs with, on stdout (or over IPC when it has a channel). Run by test/launch.test.ts.
 *
 *   LAUNCH_EXEC=/path   relaunch with this node binary instead (a missing one makes execve fail)
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { relaunch } from '../../src/launch.js';

const why = relaunch({ pid: process.pid, execPath: process.env.LAUNCH_EXEC ?? process.execPath, execArgv: process.execArgv, argv: process.argv, env: process.env, channel: process.channel });
// Objects that survive scavenges make V8 grow the young generation up to its ceiling.
const keep: { i: number }[] = [];
for (let i = 0; i < 2_000_000; i++) keep.push({ i });
const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
let stdin = '';
if (process.send === undefined) for await (const chunk of process.stdin) stdin += String(chunk);
const report = { pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), why, newSpace, kept: keep.length, stdin, marker: process.env.TOLLGATE_RELAUNCHED ?? null };
if (process.send !== undefined) process.send(report, () => process.disconnect());
else process.stdout.write(`${JSON.stringify(report)}\n`);
