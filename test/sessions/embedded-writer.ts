/**
 * embedded-writer is the child process of the durability test: it writes until it is killed,
 * and prints `acked <key>` only after the store has resolved the write.
 * Usage: node --import tsx test/sessions/embedded-writer.ts <dir>
 */
import { EmbeddedStore } from '../../src/sessions/embedded.js';

const dir = process.argv[2];
if (!dir) {
  // `tap test/sessions/` runs every file in the directory; without a directory this is that run.
  const { default: t } = await import('tap');
  t.plan(0, 'child process of embedded.test.ts, not a test');
  process.exit(0);
}
const store = new EmbeddedStore({ path: dir });
// Several writers at once, so their writes share fsyncs (group commit) as a busy node's do.
let next = 0;
async function writer(): Promise<never> {
  for (;;) {
    const i = next++;
    const key = `k${i}`;
    await store.set(key, `v${i}`);
    await store.atomic([
      { op: 'set', key: `${key}:pair`, value: `p${i}` },
      { op: 'sadd', key: 'index', member: key },
    ]);
    await store.incr('count', 0);
    // Writes to a pipe are synchronous on Linux, so the line is out before the next write starts.
    process.stdout.write(`acked ${key}\n`);
  }
}
await Promise.all(Array.from({ length: 4 }, writer));
