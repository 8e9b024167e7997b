/**
 * samlforgeries: the hostile SAML response classes the tests know, each made from a signed Base
 * (samlfuzz.ts): tampering, missing or foreign signatures, wrong Issuer, Destination, Recipient,
 * Audience, Status, InResponseTo and times (signed again with the IdP's own key, so only those
 * checks can tell), XSW, weak algorithms, and signed shapes readers may read two ways.
 */
import { ALG, ASSERTION_XPATH, el, mutate, resign, resignAs, stripSignatures, withDoctype, xswSameId, xswSiblingAssertion, xswWrappedOriginal, xswWrappedResponse, type SignAs } from './saml.js';
import { EVIL_NAME, type Base, type Rng, type Setting } from './samlfuzz.js';

/** Forgery is one known hostile class, made from a Base. */
export interface Forgery {
  readonly name: string;
  readonly make: (b: Base, s: Setting, rng: Rng) => string;
}

const other = 'http://login.other.test/sfc_sso';
const setAttr = (name: string, attr: string, value: string) => (xml: string) => mutate(xml, (doc) => el(doc, name).setAttribute(attr, value));
const setText = (name: string, value: string) => (xml: string) => mutate(xml, (doc) => void (el(doc, name).textContent = value));
const shiftTimes = (ms: number) => (xml: string) =>
  xml.replace(/(NotBefore|NotOnOrAfter|IssueInstant|AuthnInstant)="([^"]+)"/g, (_, k: string, v: string) => `${k}="${new Date(Date.parse(v) + ms).toISOString()}"`);
/** again re-signs with the IdP's own key after fn: only checks other than the signature can refuse it. */
const again = (fn: (xml: string) => string) => (b: Base, s: Setting) => resign(fn(b.xml), s.keyPem, s.certPem);
const resignedAs = (assertion: SignAs, response: SignAs = {}) => (b: Base, s: Setting) => resignAs(b.xml, s.keyPem, s.certPem, assertion, response);

/** FORGERIES are the classes test/auth/saml.test.ts and test/integration/acs-security.test.ts refuse, and a few more. */
export const FORGERIES: readonly Forgery[] = [
  { name: 'tampered NameID after signing', make: (b) => b.xml.replace(`>${b.signed.nameId}<`, `>${EVIL_NAME}<`) },
  { name: 'tampered attribute after signing', make: (b) => b.xml.replace(/(<(?:saml2?:)?AttributeValue[^>]*>)[^<]*/, `$1admins`) },
  { name: 'unsigned', make: (b) => stripSignatures(b.xml) },
  { name: 'assertion signed, Response signature removed', make: (b, s) => resign(b.xml, s.keyPem, s.certPem, { response: false }) },
  { name: 'Response signed, Assertion signature removed', make: (b, s) => resign(b.xml, s.keyPem, s.certPem, { assertion: false }) },
  { name: 'signed by another key', make: (b, s) => resign(b.xml, s.attacker.keyPem, s.attacker.certPem) },
  { name: 'evil NameID signed by another key', make: (b, s) => resign(b.xml.replace(`>${b.signed.nameId}<`, `>${EVIL_NAME}<`), s.attacker.keyPem, s.attacker.certPem) },
  { name: 'wrong Issuer', make: (b, s) => resign(b.xml.replaceAll(s.idpEntityId, 'http://evil.example/idp'), s.keyPem, s.certPem) },
  { name: 'wrong Destination', make: again(setAttr('Response', 'Destination', other)) },
  { name: 'wrong Recipient', make: again(setAttr('SubjectConfirmationData', 'Recipient', other)) },
  { name: 'wrong Audience', make: again(setText('Audience', 'https://login.other.test/sfc_sso')) },
  {
    name: 'a second AudienceRestriction naming only another SP',
    make: again((x) => mutate(x, (doc) => {
      const r = el(doc, 'AudienceRestriction');
      const extra = r.cloneNode(true) as Element;
      el(extra, 'Audience').textContent = 'https://login.other.test/sfc_sso';
      r.parentNode!.insertBefore(extra, r.nextSibling);
    })),
  },
  { name: 'bearer NotBefore in the future', make: again(setAttr('SubjectConfirmationData', 'NotBefore', new Date(Date.now() + 10 * 60_000).toISOString())) },
  { name: 'Assertion without IssueInstant', make: again((x) => mutate(x, (doc) => el(doc, 'Assertion').removeAttribute('IssueInstant'))) },
  { name: 'failed Status with a signed assertion', make: again(setAttr('StatusCode', 'Value', 'urn:oasis:names:tc:SAML:2.0:status:Responder')) },
  { name: 'unknown InResponseTo', make: again((x) => x.replaceAll(/InResponseTo="[^"]*"/g, 'InResponseTo="_0123456789abcdef"')) },
  { name: 'assertion answering another request than the Response', make: again(setAttr('SubjectConfirmationData', 'InResponseTo', '_0123456789abcdef')) },
  { name: 'no InResponseTo', make: again((x) => x.replaceAll(/ InResponseTo="[^"]*"/g, '')) },
  { name: 'expired', make: again(shiftTimes(-3600_000)) },
  { name: 'not yet valid', make: again(shiftTimes(3600_000)) },
  { name: 'DOCTYPE with an external entity', make: (b) => withDoctype(b.xml) },
  { name: 'not XML', make: (b) => b.xml.slice(0, b.xml.length >> 1) },
  { name: 'XSW: unsigned sibling assertion', make: (b) => xswSiblingAssertion(b.xml, EVIL_NAME) },
  { name: 'XSW: original hidden in the signature', make: (b) => xswWrappedOriginal(b.xml, EVIL_NAME) },
  { name: 'XSW: evil assertion with the same ID', make: (b) => xswSameId(b.xml, EVIL_NAME) },
  { name: 'XSW: wrapped Response', make: (b) => xswWrappedResponse(b.xml, EVIL_NAME) },
  {
    name: 'ID shared with a decoy element',
    make: again((x) => x.replace(/(<\/saml2?:Issuer>|<\/Issuer>)/, `$1<samlp:Extensions><x:Decoy xmlns:x="urn:example:decoy" Id="${/Assertion [^>]*ID="([^"]+)"/.exec(x)![1]}"/></samlp:Extensions>`)),
  },
  { name: 'RSA-SHA1 on the Assertion', make: resignedAs({ signature: ALG.rsaSha1 }) },
  { name: 'RSA-SHA1 on the Response', make: resignedAs({}, { signature: ALG.rsaSha1 }) },
  { name: 'SHA-1 digests', make: resignedAs({ digest: ALG.sha1 }, { digest: ALG.sha1 }) },
  { name: 'c14n with comments', make: resignedAs({ c14n: ALG.excC14nComments }) },
  { name: 'inclusive c14n', make: resignedAs({ c14n: ALG.c14n }, { c14n: ALG.c14n }) },
  { name: 'inclusive c14n on the Response only', make: resignedAs({}, { c14n: ALG.c14n }) },
  { name: 'a second Reference', make: resignedAs({}, { alsoReference: ASSERTION_XPATH }) },
  {
    name: 'an element after the text of the Response SignatureValue',
    // The Response's own Signature is outside its digest; a verifier that reads the first text node only sees the original value.
    make: (b) => b.xml.replace(/(<ds:SignatureValue>[^<]*)(<\/ds:SignatureValue>)/, '$1<x:Note xmlns:x="urn:example:note">not base64!</x:Note>$2'),
  },
  {
    name: 'an empty ds:Signature inside the Response KeyInfo',
    make: (b) => b.xml.replace(/<ds:KeyInfo>/, '<ds:KeyInfo><ds:Signature/>'),
  },
  // Shapes an IdP could sign that readers may read differently: each is signed with the IdP's own key.
  {
    name: 'a signed Attribute named twice',
    make: again((x) => x.replace(/(<\/(?:saml2?:)?AttributeStatement>)/, '<saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="memberOf"><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute>$1')),
  },
  {
    name: 'a signed AttributeValue holding an element',
    make: again((x) => x.replace(/(<\/(?:saml2?:)?AttributeStatement>)/, '<saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="Complex"><saml:AttributeValue><x:Unit xmlns:x="urn:example:unit">Ops</x:Unit></saml:AttributeValue></saml:Attribute>$1')),
  },
  {
    name: 'a signed NameID holding an element',
    make: (b, s) => resign(b.xml.replace(`>${b.signed.nameId}<`, `>${b.signed.nameId}<x:More xmlns:x="urn:example:more">.evil</x:More><`), s.keyPem, s.certPem),
  },
  {
    name: 'a signed NameID in another namespace only',
    make: (b, s) => resign(b.xml.replace(/<((?:saml2?:)?)NameID ([^>]*)>([^<]*)<\/(?:saml2?:)?NameID>/, `<x:NameID xmlns:x="urn:example:other" $2>${EVIL_NAME}</x:NameID>`), s.keyPem, s.certPem),
  },
  { name: 'comment inside the NameID, added after signing', make: (b) => b.xml.replace(`>${b.signed.nameId}<`, `>${b.signed.nameId.replace('@', '@<!-- -->')}<`) },
  {
    name: 'comment truncating the NameID, signed by the IdP',
    // A comment is not part of the canonical bytes, so the IdP signed the full name: an SP that stops
    // at the comment would read "mallory@lab.example" out of "mallory@lab.example<!---->.evil".
    make: (b, s) => resign(b.xml.replace(`>${b.signed.nameId}<`, `>${EVIL_NAME}<!---->.evil<`), s.keyPem, s.certPem),
  },
];
