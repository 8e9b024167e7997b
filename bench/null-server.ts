/**
 * null-server: the rig's floor for bench/scim.ts. A Node HTTP server that answers every request with
 * one fixed body of --bytes bytes, doing no other work, pinned like the SCIM server. The same load
 * phases against it show how much latency the rig itself adds (client, kernel, one pinned core, the
 * VM), so the SCIM figures can be read against it.
 *
 *   node bench/null-server.ts --bytes 900     (prints {"type":"ready","port":…,"pid":…} on stdout)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { answerStats, timed } from './service-time.js';

const { values } = parseArgs({ options: { bytes: { type: 'string', default: '900' } } });
const bytes = Number(values.bytes);
if (!Number.isInteger(bytes) || bytes < 0 || bytes > 1_000_000) throw new Error(`bad --bytes ${values.bytes}`);
const body = Buffer.alloc(bytes, 'x');
const server = createServer(
  { keepAliveTimeout: 30_000 },
  timed((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/scim+json', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
  }),
);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ type: 'ready', port: (server.address() as AddressInfo).port, pid: process.pid }) + '\n');
});
const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
answerStats(stop);
