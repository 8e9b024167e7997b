/**
 * The fuzz property of our response validator, with a fixed seed and a bounded count: from signed
 * valid responses (lab IdP logins and xml-crypto-signed LAYOUTS), 1 to 3 seeded MUTATIONS each, made
 * without the IdP's key. A response is refused with a SamlError, or accepted with exactly the
 * NameID, attributes, assertion and request its base was signed with; anything else thrown is a
 * crash. A hang fails by tap's per-file timeout. `npm run fuzz:saml` runs the same loop longer with
 * a random seed (test/fuzz/saml.ts).
 */
import t from 'tap';
import { MUTATIONS } from '../helpers/samlfuzz.js';
import { runFuzz, startSamlRig } from '../helpers/samlrig.js';

const SEED = 0x2f1e;
const CASES = 600;

t.test('mutated signed responses are refused or read as exactly what was signed, and never crash the validator', async (t) => {
  const rig = await startSamlRig();
  t.teardown(() => rig.close());
  const bases = [...(await rig.labBases(6)), ...(await rig.signerBases(18))];
  const stats = runFuzz({ seed: SEED, count: CASES, bases, setting: rig.setting, policy: rig.policy });
  t.comment(`seed ${SEED}: ${stats.cases} cases, ${stats.accepted} accepted as signed, refused ${JSON.stringify(stats.refused)}`);
  t.same(stats.findings.map((f) => `${f.kind} after ${f.c.steps.join(' + ')}: ${f.detail.slice(0, 400)}`), [], 'no crash, no other identity');
  t.equal(stats.cases, CASES, `${CASES} cases ran`);
  t.ok(stats.accepted > 0, 'some mutations keep the signed meaning and are accepted (the oracle is exercised)');
  for (const m of MUTATIONS) t.ok((stats.mutations[m.name] ?? 0) > 0, `applied: ${m.name} (${stats.mutations[m.name] ?? 0})`);
});
