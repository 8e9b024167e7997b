/**
 * scim-child: the SCIM server of test/scim/kill9.test.ts in a process of its own, so the test can
 * kill -9 it mid-stream and start it again on the same directory.
 *
 *   node --import tsx test/helpers/scim-child.ts <dir>
 *     -> one line on stdout: {"type":"ready","base":"http://127.0.0.1:<port>/acme/okta/scim/v2","token":"…","pid":…}
 *
 * The stack is startScim's (test/helpers/scim.ts): createScimHandler over a Directory over an
 * EmbeddedStore in <dir>, no rate limit, tenant acme/okta with a freshly generated token. SIGTERM,
 * or the parent closing our stdin, closes the server and the store and exits 0.
 */
import { startScim } from './scim.js';

const dir = process.argv[2];
if (dir === undefined || dir === '') {
  process.stderr.write('usage: node --import tsx test/helpers/scim-child.ts <dir>\n');
  process.exit(2);
}
const harness = await startScim({ dir });
const client = await harness.client('acme/okta');
process.stdout.write(JSON.stringify({ type: 'ready', base: client.base, token: client.token, pid: process.pid }) + '\n');

let closing = false;
async function stop(): Promise<void> {
  if (closing) return;
  closing = true;
  await harness.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
// A parent that dies (without killing us) closes our stdin: do not outlive it.
process.stdin.on('end', () => void stop());
process.stdin.resume();
