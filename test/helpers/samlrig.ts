/**
 * samlrig: a lab IdP and our SP for one IdP, with the bases the differential and fuzz tests start from.
 *
 *   startSamlRig -> lab IdP on 127.0.0.1:0 (signing pair shared with the second signer)
 *                -> SamlSp on an embedded store (issues the AuthnRequests the lab IdP answers)
 *   labBases(n)     n real logins at the lab IdP: AuthnRequest, form login, signed response
 *   signerBases(n)  n responses signed by xml-crypto directly, over every LAYOUT and user
 *   runFuzz         seeded cases against checkResponse; the property every case must keep
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SamlError, SamlSp, defaultAcsUrl, responsePolicy, spEntityId, withIdpDefaults, type IdpSettingsInput } from '../../src/auth/saml.js';
import { checkResponse, type ResponsePolicy } from '../../src/auth/samlresponse.js';
import { makeSigningPair, startLabIdp } from '../../src/labidp/idp.js';
import type { LabUser } from '../../src/labidp/users.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { encode, labLogin } from './saml.js';
import { EVIL_NAME, LAYOUTS, Rng, fuzzCase, sameAttributes, signedBase, signedOf, type Base, type FuzzCase, type Setting } from './samlfuzz.js';

export const RIG_CLOUD = 'fuzz.tollgate.test';

/** RIG_USERS cover the attribute shapes: many groups, one, none; escapes, non-ASCII text, white space around values. */
export const RIG_USERS: readonly LabUser[] = [
  { loginName: 'alice@lab.example', password: 'alice-pw', displayName: 'Alice Adams', department: 'Engineering', groups: ['eng', 'vpn-users'] },
  { loginName: 'bob@lab.example', password: 'bob-pw', displayName: 'Bob Brown', department: 'Sales', groups: ['sales'] },
  { loginName: 'carol@lab.example', password: 'carol-pw', displayName: 'Carol Clark', department: '', groups: [] },
  { loginName: 'dörte.ünal@lab.example', password: 'd-pw', displayName: 'Dörte Ünal 日本', department: 'R&D <core>', groups: ['a&b', '"quoted"', "it's", 'x<y'] },
  { loginName: 'erin@lab.example', password: 'e-pw', displayName: 'Erin', department: 'Ops', groups: Array.from({ length: 12 }, (_, i) => `group-${i}`) },
  // Signed text is read exactly as signed: leading and trailing white space is part of the value.
  { loginName: ' frank@lab.example\n', password: 'f-pw', displayName: '\tFrank Fischer ', department: ' Ops', groups: [' padded ', 'plain'] },
];

/** SamlRig is one lab IdP and one SP validating its responses. */
export interface SamlRig {
  readonly setting: Setting;
  readonly policy: ResponsePolicy;
  readonly sp: SamlSp;
  readonly idpCertPem: string;
  /** newRequestId records a new AuthnRequest at the SP and returns its ID (what a response must answer). */
  newRequestId(): Promise<string>;
  labBases(n: number): Promise<Base[]>;
  signerBases(n: number): Promise<Base[]>;
  close(): Promise<void>;
}

/** startSamlRig starts the lab IdP and builds the SP, both strict: Response and Assertion must be signed. */
export async function startSamlRig(sp: Partial<IdpSettingsInput> = {}): Promise<SamlRig> {
  const signing = makeSigningPair();
  const attacker = makeSigningPair('Not the IdP');
  const entityId = spEntityId(RIG_CLOUD, '1001', false);
  const acsUrl = defaultAcsUrl(RIG_CLOUD);
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users: RIG_USERS, spEntityId: entityId, acsUrl, ...signing });
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-samlrig-'));
  const store = new EmbeddedStore({ path: dir });
  const settings = withIdpDefaults({ id: 'lab', name: 'Lab', ssoUrl: idp.ssoUrl, idpCertPem: idp.certPem, idpEntityId: idp.entityId, ...sp });
  const samlSp = new SamlSp({ idp: settings, cloud: RIG_CLOUD, orgId: '1001', store });
  const setting: Setting = { idpEntityId: idp.entityId, spEntityId: entityId, acsUrl, keyPem: signing.keyPem, certPem: signing.certPem, attacker };
  let relay = 0;
  const newRequestId = async (): Promise<string> => (await samlSp.authorizeUrl(`relay-${++relay}`)).requestId;
  return {
    setting,
    policy: responsePolicy(settings, entityId, acsUrl),
    sp: samlSp,
    idpCertPem: idp.certPem,
    newRequestId,
    async labBases(n) {
      const out: Base[] = [];
      // The lab IdP's login form trims the user name, so white space around it is the second signer's to test.
      const users = RIG_USERS.filter((u) => u.loginName === u.loginName.trim());
      for (let i = 0; i < n; i++) {
        const user = users[i % users.length]!;
        const { url, requestId } = await samlSp.authorizeUrl(`relay-${++relay}`);
        const post = await labLogin(url, user.loginName, user.password);
        const assertionId = /Assertion [^>]*ID="([^"]+)"/.exec(post.xml)?.[1] ?? '';
        out.push({ label: 'lab IdP (samlify)', xml: post.xml, signed: signedOf(user, assertionId, requestId) });
      }
      return out;
    },
    async signerBases(n) {
      const layouts = Object.entries(LAYOUTS);
      const out: Base[] = [];
      for (let i = 0; i < n; i++) {
        const [name, layout] = layouts[i % layouts.length]!;
        const user = RIG_USERS[Math.floor(i / layouts.length) % RIG_USERS.length]!;
        out.push(signedBase(setting, user, await newRequestId(), layout, `xml-crypto: ${name}`));
      }
      return out;
    },
    async close() {
      await idp.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Finding is a case that broke the property. */
export interface Finding {
  readonly kind: 'accepted another identity' | 'crash';
  readonly detail: string;
  readonly c: FuzzCase;
}

/** FuzzStats counts what a run did. */
export interface FuzzStats {
  cases: number;
  accepted: number;
  /** refused counts refusals by SamlError code. */
  refused: Record<string, number>;
  /** mutations counts how often each operator was applied. */
  mutations: Record<string, number>;
  findings: Finding[];
}

/**
 * checkFuzzCase holds one case to the property: a response is refused with a SamlError, or accepted
 * with exactly the identity, attributes, assertion and request its base was signed with. Any other
 * exception is a crash.
 */
export function checkFuzzCase(c: FuzzCase, policy: ResponsePolicy, stats: FuzzStats): void {
  stats.cases++;
  for (const s of c.steps) stats.mutations[s] = (stats.mutations[s] ?? 0) + 1;
  try {
    const v = checkResponse(encode(c.xml), policy, Date.now());
    const want = c.base.signed;
    const same =
      v.identity.loginName === want.nameId && sameAttributes(v.attributes, want.attributes) &&
      v.identity.assertionId === want.assertionId && v.inResponseTo === want.inResponseTo && v.identity.loginName !== EVIL_NAME;
    if (!same) stats.findings.push({ kind: 'accepted another identity', detail: JSON.stringify({ got: { ...v.identity, attributes: Object.fromEntries(v.attributes) }, want }), c });
    else stats.accepted++;
  } catch (err) {
    if (err instanceof SamlError) stats.refused[err.code] = (stats.refused[err.code] ?? 0) + 1;
    else stats.findings.push({ kind: 'crash', detail: err instanceof Error ? (err.stack ?? err.message) : String(err), c });
  }
}

/** runFuzz runs `count` seeded cases (or until `untilMs`, epoch ms) and returns what happened. */
export function runFuzz(o: { seed: number; count: number; untilMs?: number; bases: readonly Base[]; setting: Setting; policy: ResponsePolicy }): FuzzStats {
  const rng = new Rng(o.seed);
  const stats: FuzzStats = { cases: 0, accepted: 0, refused: {}, mutations: {}, findings: [] };
  for (let i = 0; i < o.count && (o.untilMs === undefined || Date.now() < o.untilMs); i++) {
    checkFuzzCase(fuzzCase(o.bases, o.setting, rng), o.policy, stats);
  }
  return stats;
}
