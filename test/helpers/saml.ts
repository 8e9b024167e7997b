/**
 * saml: driving the lab IdP programmatically and crafting hostile SAML responses for tests.
 *
 *   labLogin: GET the SP's redirect URL -> lab IdP form -> POST credentials -> SAMLResponse + RelayState
 *   resign / stripSignatures / mutate / xsw* / withDoctype: change a response after the IdP signed it
 *
 * Re-signing uses xml-crypto (installed with node-saml) with the same layout samlify uses:
 * RSA-SHA256, exclusive C14N, enveloped, the signature right after the Issuer.
 */
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';

const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';

/** LabLoginResult is what the IdP's auto-post form would send to the ACS. */
export interface LabLoginResult {
  readonly samlResponse: string;
  readonly relayState: string;
  readonly acsUrl: string;
  /** xml is the decoded response. */
  readonly xml: string;
}

/** htmlField reads the value of a hidden input from one of the lab IdP's pages. */
export function htmlField(html: string, name: string): string | null {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m === null ? null : unescapeHtml(m[1]!);
}

function unescapeHtml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
}

/** labLogin signs in at the lab IdP for the AuthnRequest URL and returns the posted form. */
export async function labLogin(authorizeUrl: string, username: string, password: string): Promise<LabLoginResult> {
  const form = await fetch(authorizeUrl);
  const html = await form.text();
  if (form.status !== 200) throw new Error(`lab IdP answered ${form.status} to the AuthnRequest: ${html}`);
  const pending = htmlField(html, 'pending');
  if (pending === null) throw new Error('no login form');
  const res = await fetch(new URL('/login', authorizeUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ pending, username, password }).toString(),
  });
  const page = await res.text();
  if (res.status !== 200) throw new Error(`lab IdP answered ${res.status} to the login: ${page}`);
  const samlResponse = htmlField(page, 'SAMLResponse');
  const acsUrl = /<form method="post" action="([^"]*)"/.exec(page)?.[1];
  if (samlResponse === null || acsUrl === undefined) throw new Error('no auto-post form');
  return { samlResponse, relayState: htmlField(page, 'RelayState') ?? '', acsUrl: unescapeHtml(acsUrl), xml: decode(samlResponse) };
}

/** decode turns a SAMLResponse field into XML. */
export function decode(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}

/** encode turns XML into a SAMLResponse field. */
export function encode(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}

/**
 * parse reads XML with xmldom (tests only; the SP's strict parser is in src/auth/samlxml.ts). It
 * throws on fatal errors only, and keeps quiet about the rest (the fuzzer feeds it broken XML).
 */
export function parse(xml: string): Document {
  const quiet = (): void => {};
  return new DOMParser({ errorHandler: { warning: quiet, error: quiet } }).parseFromString(xml, 'text/xml');
}

/** serialize writes a document back to text. */
export function serialize(doc: Document | Node): string {
  return new XMLSerializer().serializeToString(doc);
}

/** mutate parses, lets fn change the document, and serializes it again. */
export function mutate(xml: string, fn: (doc: Document) => void): string {
  const doc = parse(xml);
  fn(doc);
  return serialize(doc);
}

/** el finds the first element with the given local name (any namespace). */
export function el(doc: Document | Element, localName: string): Element {
  const found = doc.getElementsByTagNameNS('*', localName)[0];
  if (found === undefined) throw new Error(`no ${localName}`);
  return found;
}

/** assertionOf is the (first) Assertion element. */
export function assertionOf(doc: Document): Element {
  return el(doc, 'Assertion');
}

/** stripSignatures removes every ds:Signature. */
export function stripSignatures(xml: string): string {
  return mutate(xml, (doc) => {
    for (const s of Array.from(doc.getElementsByTagNameNS(NS_DSIG, 'Signature'))) s.parentNode!.removeChild(s);
  });
}

/** resign strips all signatures and signs again with keyPem: the Assertion, then the Response. */
export function resign(xml: string, keyPem: string, certPem: string, what: { response?: boolean; assertion?: boolean } = {}): string {
  let out = stripSignatures(xml);
  if (what.assertion ?? true) out = signAs(out, ASSERTION_XPATH, keyPem, certPem);
  if (what.response ?? true) out = signAs(out, RESPONSE_XPATH, keyPem, certPem);
  return out;
}

/** ALG names the XML-DSig algorithms tests sign with (xml-crypto takes these URIs). */
export const ALG = {
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  excC14nComments: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
} as const;
export const RESPONSE_XPATH = "/*[local-name(.)='Response']";
export const ASSERTION_XPATH = "/*[local-name(.)='Response']/*[local-name(.)='Assertion']";

/** SignAs chooses the algorithms of one test signature; unset, they are the lab IdP's (RSA-SHA256, exclusive c14n). */
export interface SignAs {
  signature?: string;
  digest?: string;
  c14n?: string;
  prefixes?: string[];
  /** alsoReference adds a second Reference to this XPath. */
  alsoReference?: string;
}

/** signAs signs the element at xpath with keyPem, the signature right after its Issuer. */
export function signAs(xml: string, xpath: string, keyPem: string, certPem: string, o: SignAs = {}): string {
  const c14n = o.c14n ?? ALG.excC14n;
  const sig = new SignedXml({ privateKey: keyPem, publicCert: certPem, signatureAlgorithm: o.signature ?? ALG.rsaSha256, canonicalizationAlgorithm: c14n });
  const reference = { digestAlgorithm: o.digest ?? ALG.sha256, transforms: [ALG.enveloped, c14n], inclusiveNamespacesPrefixList: o.prefixes ?? [] };
  sig.addReference({ xpath, ...reference });
  if (o.alsoReference !== undefined) sig.addReference({ xpath: o.alsoReference, ...reference, transforms: [c14n] });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

/** resignAs strips all signatures, signs the Assertion as `assertion` says, then the Response as `response` says. */
export function resignAs(xml: string, keyPem: string, certPem: string, assertion: SignAs, response: SignAs = assertion): string {
  return signAs(signAs(stripSignatures(xml), ASSERTION_XPATH, keyPem, certPem, assertion), RESPONSE_XPATH, keyPem, certPem, response);
}

/** evilCopy clones the signed assertion as an attacker would: new ID, another NameID, no signature unless kept. */
function evilCopy(doc: Document, signed: Element, nameId: string, keepSignature = false): Element {
  const evil = signed.cloneNode(true) as Element;
  evil.setAttribute('ID', '_evil' + Math.random().toString(16).slice(2));
  if (!keepSignature) for (const s of Array.from(evil.getElementsByTagNameNS(NS_DSIG, 'Signature'))) s.parentNode!.removeChild(s);
  const n = evil.getElementsByTagNameNS(NS_ASSERTION, 'NameID')[0]!;
  while (n.firstChild) n.removeChild(n.firstChild);
  n.appendChild(doc.createTextNode(nameId));
  return evil;
}

/** xswSiblingAssertion puts an unsigned evil assertion before the signed one (XSW, two assertions). */
export function xswSiblingAssertion(xml: string, nameId: string): string {
  return mutate(xml, (doc) => {
    const signed = assertionOf(doc);
    signed.parentNode!.insertBefore(evilCopy(doc, signed, nameId), signed);
  });
}

/**
 * xswWrappedOriginal replaces the signed assertion with an evil one that carries the original
 * signature, and hides the original assertion inside that signature's ds:Object, where its digest
 * still verifies (the classic XSW that fools verifiers which look up the reference by ID).
 */
export function xswWrappedOriginal(xml: string, nameId: string): string {
  return mutate(xml, (doc) => {
    const signed = assertionOf(doc);
    const evil = evilCopy(doc, signed, nameId);
    const signature = signed.getElementsByTagNameNS(NS_DSIG, 'Signature')[0]!;
    signed.removeChild(signature);
    const object = doc.createElementNS(NS_DSIG, 'ds:Object');
    object.appendChild(signed.cloneNode(true));
    signature.appendChild(object);
    const issuer = evil.getElementsByTagNameNS(NS_ASSERTION, 'Issuer')[0]!;
    evil.insertBefore(signature, issuer.nextSibling);
    signed.parentNode!.replaceChild(evil, signed);
  });
}

/** xswSameId adds an evil assertion that reuses the signed assertion's ID, after it. */
export function xswSameId(xml: string, nameId: string): string {
  return mutate(xml, (doc) => {
    const signed = assertionOf(doc);
    const evil = evilCopy(doc, signed, nameId);
    evil.setAttribute('ID', signed.getAttribute('ID')!);
    signed.parentNode!.insertBefore(evil, signed.nextSibling);
  });
}

/**
 * xswWrappedResponse makes a new, unsigned Response around an evil assertion, carrying the original
 * Response signature, with the original signed Response hidden inside it (response-level XSW).
 */
export function xswWrappedResponse(xml: string, nameId: string): string {
  return mutate(xml, (doc) => {
    const original = doc.documentElement;
    const evil = original.cloneNode(true) as Element;
    evil.setAttribute('ID', '_evilresp' + Math.random().toString(16).slice(2));
    const evilAssertion = assertionOf(evil as unknown as Document);
    // The evil assertion keeps the original's (now broken) signature, so only signature checks can tell.
    evil.replaceChild(evilCopy(doc, evilAssertion, nameId, true), evilAssertion);
    // The Response's own signature is its direct ds:Signature child.
    const sig = Array.from(evil.childNodes).find((n) => (n as Element).localName === 'Signature') as Element;
    const object = doc.createElementNS(NS_DSIG, 'ds:Object');
    object.appendChild(original.cloneNode(true));
    sig.appendChild(object);
    doc.replaceChild(evil, original);
  });
}

/** withDoctype prefixes a DOCTYPE with an external entity and uses it in the NameID (XXE). */
export function withDoctype(xml: string): string {
  const body = xml.replace(/^<\?xml[^>]*\?>/, '');
  return `<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + body.replace(/(<saml:NameID[^>]*>)/, '$1&xxe;');
}
