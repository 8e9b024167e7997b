/**
 * saml: the SAML response fuzzer, run long. `npm run fuzz:saml [-- --seed N] [--seconds S] [--count N]`
 *
 *   lab IdP + SP (test/helpers/samlrig.ts) -> bases, signed again every 2 minutes so they stay valid
 *   runFuzz(seed) -> cases until --count or --seconds -> findings written to a folder, exit 1
 *
 * Without --seed it draws one and prints it first; the same seed replays the same mutations (on
 * fresh bases of the same shape: IDs and times differ, choices do not). A case that takes more than
 * a second, and again when run a second time, is reported as a hang.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, fuzzCase } from '../helpers/samlfuzz.js';
import { checkFuzzCase, startSamlRig, type FuzzStats } from '../helpers/samlrig.js';

const { values } = parseArgs({ options: { seed: { type: 'string' }, seconds: { type: 'string', default: '60' }, count: { type: 'string' } } });
const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
const seconds = Number(values.seconds);
const count = values.count === undefined ? Infinity : Number(values.count);
if (!Number.isInteger(seed) || !(seconds > 0) || !(count > 0)) {
  console.error('usage: npm run fuzz:saml -- [--seed N] [--seconds S] [--count N]');
  process.exit(2);
}
console.log(`fuzz:saml seed ${seed} (replay: npm run fuzz:saml -- --seed ${seed}${values.count ? ` --count ${count}` : ` --seconds ${seconds}`})`);

const HANG_MS = 1_000;
const REBASE_MS = 2 * 60_000;
const rig = await startSamlRig();
const rng = new Rng(seed);
const stats: FuzzStats = { cases: 0, accepted: 0, refused: {}, mutations: {}, findings: [] };
const hangs: string[] = [];
const until = Date.now() + seconds * 1000;
let bases = [...(await rig.labBases(10)), ...(await rig.signerBases(30))];
let rebased = Date.now();
let reported = Date.now();
while (stats.cases < count && Date.now() < until) {
  if (Date.now() - rebased > REBASE_MS) {
    bases = [...(await rig.labBases(10)), ...(await rig.signerBases(30))];
    rebased = Date.now();
  }
  const c = fuzzCase(bases, rig.setting, rng);
  const took = timed(() => checkFuzzCase(c, rig.policy, stats));
  // A busy machine or a GC pause can stall one case; a hang is a case that is slow again on its own.
  if (took > HANG_MS) {
    const again = timed(() => checkFuzzCase(c, rig.policy, { cases: 0, accepted: 0, refused: {}, mutations: {}, findings: [] }));
    if (again > HANG_MS) hangs.push(`case ${stats.cases} took ${Math.round(took)} ms, then ${Math.round(again)} ms, after ${c.steps.join(' + ')}`);
  }
  if (Date.now() - reported > 10_000) {
    reported = Date.now();
    console.log(`${stats.cases} cases, ${stats.accepted} accepted as signed, ${stats.findings.length} findings, ${hangs.length} hangs`);
  }
}
await rig.close();

function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

console.log(`seed ${seed}: ${stats.cases} cases, ${stats.accepted} accepted as signed, refused ${JSON.stringify(stats.refused)}`);
console.log(`mutations applied: ${JSON.stringify(stats.mutations)}`);
if (stats.findings.length === 0 && hangs.length === 0) {
  console.log('no finding');
  process.exit(0);
}
const dir = join(tmpdir(), `tollgate-saml-fuzz-${seed}`);
mkdirSync(dir, { recursive: true });
stats.findings.forEach((f, i) => {
  writeFileSync(join(dir, `finding-${i}.xml`), f.c.xml);
  writeFileSync(join(dir, `finding-${i}.txt`), `${f.kind} after ${f.c.steps.join(' + ')} (base: ${f.c.base.label})\n${f.detail}\n`);
  console.log(`FINDING ${i}: ${f.kind} after ${f.c.steps.join(' + ')}`);
});
for (const h of hangs) console.log(`HANG: ${h}`);
console.log(`findings written to ${dir}`);
process.exit(1);
