/**
 * samldiff: our response validator (samlresponse + xmldsig, hand-written) against node-saml's own
 * validatePostResponseAsync, on one corpus, for the differential tests under test/auth/.
 *
 *   corpus item (XML + the base it was made from)
 *        |                                  |
 *   checkResponse (ours)          node-saml, configured strictly (in compareWithNodeSaml)
 *        \________ compare ________/
 *   node-saml refuses -> we refuse; both accept -> same NameID, attributes, session index, Issuer,
 *   assertion ID; we refuse, node-saml accepts -> the refusal is one of STRICTER, with its reason.
 */
import { SAML, ValidateInResponseTo, type Profile } from '@node-saml/node-saml';
import { SamlError } from '../../src/auth/samlerror.js';
import { checkResponse, type VerifiedResponse } from '../../src/auth/samlresponse.js';
import { encode } from './saml.js';
import { fuzzCase, type Base, type Rng, type Setting } from './samlfuzz.js';
import type { SamlRig } from './samlrig.js';

/**
 * STRICTER lists where we refuse what node-saml accepts, by our code and reason, and why. node-saml
 * leaves these to the application (it verifies signatures, times, audience and InResponseTo only).
 */
export const STRICTER: readonly { code: string; reason: RegExp; why: string }[] = [
  { code: 'SAML_DESTINATION', reason: /Destination/, why: 'node-saml does not check the Response Destination; SAML Profiles §4.1.4.5 requires it on a signed Response' },
  { code: 'SAML_RECIPIENT', reason: /Recipient/, why: 'node-saml does not check the bearer Recipient; SAML Profiles §4.1.4.2 requires it to be the ACS URL' },
  { code: 'SAML_ISSUER', reason: /Issuer/, why: 'node-saml checks no Issuer of a login response (idpIssuer is for logout messages only); SAML Core §2.2.5 / §3.2.2' },
  { code: 'SAML_STATUS', reason: /Status is/, why: 'node-saml ignores the Status when an Assertion is present; SAML Core §3.2.2.2 says only Success carries a login' },
  { code: 'SAML_SIGNATURE', reason: /is not RSA with SHA-256|is not SHA-256 or better/, why: 'node-saml (xml-crypto) still verifies RSA-SHA1 and SHA-1 digests; SHA-1 is broken for signatures (RFC 6194)' },
  { code: 'SAML_SIGNATURE', reason: /is not exclusive c14n without comments/, why: 'exclusive c14n only: node-saml accepts c14n WithComments (comments in signed bytes start NameID truncation) and inclusive c14n on a Response alone (it cannot verify it on an Assertion inside a signed Response, so we refuse it everywhere)' },
  { code: 'SAML_SIGNATURE', reason: /is not SignedInfo, SignatureValue\[, KeyInfo\]/, why: 'xml-crypto ignores extra elements in a ds:Signature (ds:Object, a whole Assertion); XSW attacks hide the original there' },
  { code: 'SAML_SIGNATURE', reason: /SignatureValue is not base64|DigestValue is not base64/, why: 'xml-crypto reads the first text node of SignatureValue and DigestValue only; we read all their text, which must be base64' },
  { code: 'SAML_SIGNATURE', reason: /the Signature holds a|KeyInfo holds/, why: 'no comment, processing instruction or CDATA in a ds:Signature, and only key names in KeyInfo: xml-crypto reads such values up to the first comment and ignores KeyInfo' },
  { code: 'SAML_NO_LOGIN_NAME', reason: /NameID/, why: 'node-saml reads elements by local name in any namespace (xml2js stripPrefix), so it takes an {urn:other}NameID for the NameID; we read SAML elements in the SAML namespace only' },
  { code: 'SAML_MALFORMED', reason: /holds elements, not a string/, why: 'a NameID, Issuer or Audience holding elements is refused: node-saml reads its text up to the first child element, so two readers would see two names' },
  { code: 'SAML_MALFORMED', reason: /appears more than once/, why: 'an Attribute named twice is refused: node-saml keeps the last one, a merging reader keeps both, so the groups would depend on the reader' },
  { code: 'SAML_SIGNATURE', reason: /ds:Signature elements outside the Response and Assertion/, why: 'a ds:Signature anywhere but on the Response or Assertion verifies nothing we read and is where XSW parks originals; node-saml ignores it' },
];

/** CorpusItem is one response of the corpus and the signed base it was made from. */
export interface CorpusItem {
  readonly label: string;
  readonly xml: string;
  readonly base: Base;
}

/** mutationItems makes n corpus items of seeded mutations of the bases. */
export function mutationItems(bases: readonly Base[], setting: Setting, rng: Rng, n: number): CorpusItem[] {
  return Array.from({ length: n }, () => {
    const c = fuzzCase(bases, setting, rng);
    return { label: `mutation: ${c.steps.join(' + ')}`, xml: c.xml, base: c.base };
  });
}

/** DiffResult is what comparing a corpus found. */
export interface DiffResult {
  bothAccept: number;
  bothRefuse: number;
  /** stricter counts, by STRICTER reason, where we refused what node-saml accepted. */
  stricter: Map<string, number>;
  /** problems are the disagreements STRICTER does not cover, each with where its XML differs from its base. */
  problems: string[];
}

interface Verdict {
  readonly ok: boolean;
  readonly code: string;
  readonly reason: string;
}

/** compareWithNodeSaml runs every item through both validators, one at a time. */
export async function compareWithNodeSaml(rig: SamlRig, corpus: readonly CorpusItem[]): Promise<DiffResult> {
  const { setting } = rig;
  // node-saml as strictly as it goes: the IdP certificate only, both signatures wanted, the same
  // audience and clock skew as ours, no age limit beyond NotOnOrAfter (ours has none either).
  // InResponseTo: node-saml checks it against its cache provider, ours against the store in SamlSp
  // (checkOpenRequest, outside checkResponse). Both are held to the same rule here: the one request
  // a corpus item was made for is open, nothing else; node-saml's cache answers for it only, and
  // our side must return that request ID as the one the response answers.
  let openRequest = '';
  const nodeSaml = new SAML({
    callbackUrl: setting.acsUrl,
    issuer: setting.spEntityId,
    audience: setting.spEntityId,
    idpCert: rig.idpCertPem,
    idpIssuer: setting.idpEntityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    acceptedClockSkewMs: rig.policy.expect.skewMs,
    maxAssertionAgeMs: 0,
    validateInResponseTo: ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: 10 * 60_000,
    cacheProvider: {
      saveAsync: async () => null,
      getAsync: async (key: string) => (key === openRequest ? new Date().toISOString() : null),
      // Nothing is consumed: one-time use is the store's business on both sides, not compared here.
      removeAsync: async () => null,
    },
  });



  const tally = { bothAccept: 0, bothRefuse: 0, stricter: new Map<string, number>() };
  const problems: string[] = [];
  for (const item of corpus) {
    openRequest = item.base.signed.inResponseTo;
    const b64 = encode(item.xml);
    let verified: VerifiedResponse | null = null;
    let ours: Verdict;
    try {
      verified = checkResponse(b64, rig.policy, Date.now());
      ours = verified.inResponseTo === openRequest
        ? { ok: true, code: '', reason: '' }
        : { ok: false, code: 'SAML_IN_RESPONSE_TO', reason: `answers ${verified.inResponseTo}, not the open request` };
    } catch (err) {
      if (!(err instanceof SamlError)) throw err;
      ours = { ok: false, code: err.code, reason: err.reason };
    }
    let profile: Profile | null = null;
    let theirs: string | null = null;
    try {
      profile = (await nodeSaml.validatePostResponseAsync({ SAMLResponse: b64 })).profile;
      if (profile === null) theirs = 'no profile';
    } catch (err) {
      theirs = (err as Error).message;
    }

    const where = (): string => changed(item.base.xml, item.xml);
    if (ours.ok && theirs !== null) problems.push(`${item.label}: we accept, node-saml refuses (${theirs}); changed: ${where()}`);
    else if (!ours.ok && theirs === null) {
      const entry = STRICTER.find((s) => s.code === ours.code && s.reason.test(ours.reason));
      if (entry === undefined) problems.push(`${item.label}: we refuse (${ours.code}: ${ours.reason}), node-saml accepts; changed: ${where()}`);
      else tally.stricter.set(entry.why, (tally.stricter.get(entry.why) ?? 0) + 1);
    } else if (ours.ok && profile !== null && verified !== null) {
      tally.bothAccept++;
      const diff = identityDiff(verified, profile);
      if (diff !== null) problems.push(`${item.label}: both accept, identities differ: ${diff}`);
    } else tally.bothRefuse++;
  }

  return { ...tally, problems };
}

/** changed shows where a case differs from its base: the span between the first and last differing characters. */
function changed(base: string, xml: string): string {
  let start = 0;
  while (start < base.length && base[start] === xml[start]) start++;
  let end = 0;
  while (end < base.length - start && end < xml.length - start && base[base.length - 1 - end] === xml[xml.length - 1 - end]) end++;
  const span = xml.slice(Math.max(0, start - 40), xml.length - end + 40);
  return JSON.stringify(span.length > 600 ? `${span.slice(0, 300)} ... ${span.slice(-300)}` : span);
}

/** identityDiff compares what both validators say the signed assertion holds; null when the same. */
function identityDiff(ours: VerifiedResponse, profile: Profile): string | null {
  const assertion = (profile.getAssertion?.() as { Assertion?: { $?: { ID?: string } } } | undefined)?.Assertion;
  const theirs = {
    nameId: profile.nameID,
    sessionIndex: profile.sessionIndex ?? '',
    issuer: profile.issuer,
    assertionId: assertion?.$?.ID ?? '',
    attributes: normalizeAttributes(profile.attributes as Record<string, unknown> | undefined),
  };
  const mine = {
    nameId: ours.identity.loginName,
    sessionIndex: ours.identity.sessionIndex,
    issuer: ours.identity.issuer,
    assertionId: ours.identity.assertionId,
    attributes: Object.fromEntries([...ours.attributes].filter(([, v]) => v.length > 0).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  return JSON.stringify(theirs) === JSON.stringify(mine) ? null : `node-saml ${JSON.stringify(theirs)} vs ours ${JSON.stringify(mine)}`;
}

/**
 * normalizeAttributes writes node-saml's attributes as ours are: every value a list, and values
 * that are not text (node-saml's undefined for an empty one, an object for one holding elements) left out.
 */
function normalizeAttributes(attrs: Record<string, unknown> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(attrs ?? {})) {
    // node-saml gives a value holding elements as an object; Tollgate reads text values only and leaves such values out.
    const values = (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x !== '');
    if (values.length > 0) out[name] = values;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
