/**
 * The ClientHello fuzzer for longer runs than the test suite's (which runs a few seconds on a fixed seed):
 *
 *   node --import tsx test/fuzz/clienthello.ts [--seed N] [--cases N]
 *
 * Captures real ClientHellos (Node, openssl s_client, curl), mutates them, and checks every input
 * against Node's own TLS server (see test/helpers/clienthello.ts). Prints the counts and each failure
 * with its input in hex, and exits 1 if there was any.
 */
import { parseArgs } from 'node:util';
import { captureCorpus, fuzz, NodeOracle } from '../helpers/clienthello.js';

const { values } = parseArgs({ options: { seed: { type: 'string' }, cases: { type: 'string', default: '20000' } } });
const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() % 2 ** 31);
const cases = Number(values.cases);
const corpus = await captureCorpus();
const oracle = await NodeOracle.start();
const started = Date.now();
const report = await fuzz(corpus, oracle, seed, cases);
await oracle.close();
for (const f of report.failures.slice(0, 20)) console.log(JSON.stringify(f));
console.log(
  `seed ${seed}: ${report.cases} cases in ${((Date.now() - started) / 1000).toFixed(1)} s from ${corpus.length} captured hellos; ` +
    `Node's server: ${report.node.sni} with SNI, ${report.node['no-sni']} without, ${report.node.rejected} refused; ` +
    `ours: ${JSON.stringify(report.ours)}; ${report.failures.length} failures`,
);
process.exit(report.failures.length > 0 ? 1 : 0);
