/**
 * Our response validator against node-saml's, part one: every valid base (lab IdP logins, signed by
 * samlify, and xml-crypto-signed responses in every LAYOUT), every known forgery class on a few
 * bases, and seeded mutations. Part two (samlresponse.differential-mutations.test.ts) adds more
 * mutations under another seed; the two are split only to keep each file well inside the per-file
 * timeout on a loaded machine (node-saml takes ~8 ms of CPU a response). See test/helpers/samldiff.ts.
 */
import t from 'tap';
import { compareWithNodeSaml, mutationItems, STRICTER, type CorpusItem } from '../helpers/samldiff.js';
import { FORGERIES } from '../helpers/samlforgeries.js';
import { Rng } from '../helpers/samlfuzz.js';
import { startSamlRig } from '../helpers/samlrig.js';

const SEED = 0x5a31;
const LAB_BASES = 30;
const SIGNER_BASES = 60;
const FORGERY_BASES = 6;
const MUTATED = 450;

t.test('our validator refuses whatever node-saml refuses, and reads the same identity where both accept', async (t) => {
  const rig = await startSamlRig();
  t.teardown(() => rig.close());
  const rng = new Rng(SEED);
  const bases = [...(await rig.labBases(LAB_BASES)), ...(await rig.signerBases(SIGNER_BASES))];
  const corpus: CorpusItem[] = bases.map((b) => ({ label: `valid: ${b.label}`, xml: b.xml, base: b }));
  for (const f of FORGERIES) {
    for (let i = 0; i < FORGERY_BASES; i++) {
      const base = rng.pick(bases);
      corpus.push({ label: `forgery: ${f.name}`, xml: f.make(base, rig.setting, rng), base });
    }
  }
  corpus.push(...mutationItems(bases, rig.setting, rng, MUTATED));

  const r = await compareWithNodeSaml(rig, corpus);
  t.comment(`corpus: ${corpus.length} responses (${bases.length} valid bases, ${FORGERIES.length * FORGERY_BASES} forgeries, ${MUTATED} mutations, seed ${SEED})`);
  t.same(r.problems, [], 'no disagreement outside STRICTER');
  t.ok(r.bothAccept >= bases.length, `both accept ${r.bothAccept} (every valid base among them), both refuse ${r.bothRefuse}`);
  // Every reason we give for being stricter is one this corpus shows, so the list stays honest.
  for (const s of STRICTER) t.ok(r.stricter.has(s.why), `stricter, seen ${r.stricter.get(s.why) ?? 0} times: ${s.why}`);
});
