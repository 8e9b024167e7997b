/**
 * Our response validator against node-saml's, part two: more seeded mutations of lab IdP and
 * xml-crypto-signed bases, under another seed than part one. See test/helpers/samldiff.ts.
 */
import t from 'tap';
import { compareWithNodeSaml, mutationItems } from '../helpers/samldiff.js';
import { Rng } from '../helpers/samlfuzz.js';
import { startSamlRig } from '../helpers/samlrig.js';

const SEED = 0x7c02;
const LAB_BASES = 15;
const SIGNER_BASES = 30;
const MUTATED = 1250;

t.test('mutated responses: we refuse whatever node-saml refuses, and read the same identity where both accept', async (t) => {
  const rig = await startSamlRig();
  t.teardown(() => rig.close());
  const rng = new Rng(SEED);
  const bases = [...(await rig.labBases(LAB_BASES)), ...(await rig.signerBases(SIGNER_BASES))];
  const corpus = mutationItems(bases, rig.setting, rng, MUTATED);
  const r = await compareWithNodeSaml(rig, corpus);
  t.comment(`corpus: ${corpus.length} mutations of ${bases.length} bases, seed ${SEED}`);
  t.same(r.problems, [], 'no disagreement outside STRICTER');
  t.ok(r.bothAccept > 0, `both accept ${r.bothAccept}, both refuse ${r.bothRefuse}, we are stricter on ${[...r.stricter.values()].reduce((a, b) => a + b, 0)}`);
});
