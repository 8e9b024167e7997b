/**
 * tls-server: the terminating side of bench/tls.ts, pinned like a proxy under test. A TLS server
 * whose SNICallback asks a LeafMinter for each host's SecureContext, as an inspecting terminator
 * does, and that ends each connection once the handshake is done. It makes its own CA in --dir.
 *
 *   node --import tsx bench/tls-server.ts --ca rsa2048|p256 --leaf ecdsa-p256|rsa2048 --dir DIR
 *   (prints {"type":"ready","port":…,"pid":…,"caFile":…}; on SIGUSR2 {"type":"stats",…})
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { parseArgs } from 'node:util';
import { checkCa, createCa, type CaKeyType } from '../src/tls/ca.js';
import { LeafMinter, type LeafKeyType } from '../src/tls/leaf.js';

const { values } = parseArgs({ options: { ca: { type: 'string', default: 'rsa2048' }, leaf: { type: 'string', default: 'ecdsa-p256' }, dir: { type: 'string' } } });
if (values.dir === undefined) throw new Error('--dir is required');
const made = createCa({ keyType: values.ca as CaKeyType });
const caFile = join(values.dir, `ca-${values.ca}.pem`);
writeFileSync(caFile, made.certPem);
const minter = new LeafMinter({ ca: checkCa(made.certPem, made.keyPem), keyType: values.leaf as LeafKeyType, cacheSize: 100_000 });
const server = createServer({ SNICallback: minter.sniCallback }, (sock) => sock.end());
server.on('tlsClientError', (err) => process.stderr.write(`tls-server: ${err.message}\n`));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ type: 'ready', port: (server.address() as AddressInfo).port, pid: process.pid, caFile }) + '\n');
});
process.on('SIGUSR2', () => process.stdout.write(JSON.stringify({ type: 'stats', ...minter.stats, size: minter.size }) + '\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
