/**
 * launch-child: a process that calls relaunch() at its start, then grows its young generation and
 * reports what it runs with. Run by test/launch.test.ts.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { relaunch } from '../../src/launch.js';

const why = relaunch();
// Objects that survive scavenges make V8 grow the young generation up to its ceiling.
const keep: { i: number }[] = [];
for (let i = 0; i < 2_000_000; i++) keep.push({ i });
const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
process.stdout.write(`${JSON.stringify({ pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), why, newSpace, kept: keep.length })}\n`);
