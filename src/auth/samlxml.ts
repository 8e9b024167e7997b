/**
 * samlxml: reading SAML messages with @xmldom/xmldom (the parser node-saml itself uses), strictly.
 *
 * Pure and IO-free. A DOCTYPE or entity declaration is refused before parsing: SAML never needs a
 * DTD (SAML Core §1.3 / saml-schema-*.xsd use no DTD), and DTDs are how XXE and entity-expansion
 * attacks enter. Any parser warning or error makes the message malformed.
 */
import { createRequire } from 'node:module';

/** xmldom loads on the first SAML message read, so a worker that never sees a sign-in never holds it. */
let xmldom: typeof import('@xmldom/xmldom') | null = null;
const parser = () => (xmldom ??= createRequire(import.meta.url)('@xmldom/xmldom') as typeof import('@xmldom/xmldom')).DOMParser;
import { SamlError } from './samlerror.js';

export const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
export const CM_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
export const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

/** MAX_XML_BYTES bounds one message; Okta's responses are a few KiB. */
export const MAX_XML_BYTES = 256 * 1024;

const DTD = /<!DOCTYPE|<!ENTITY|<!ELEMENT|<!ATTLIST/i;

/**
 * parseSamlXml parses one SAML message or throws SamlError (SAML_DOCTYPE, SAML_MALFORMED).
 * The raw text is scanned for DTD markup first, and the parsed tree is checked again, so that no
 * encoding trick slips a DocumentType node past the scan.
 */
export function parseSamlXml(text: string): Document {
  // XML 1.0 §2.11: line ends are read as LF, before parsing (node-saml does this for xml-crypto too).
  const xml = text.replace(/\r\n?/g, '\n');
  if (Buffer.byteLength(xml) > MAX_XML_BYTES) throw new SamlError('SAML_MALFORMED', `message larger than ${MAX_XML_BYTES} bytes`);
  if (DTD.test(xml)) throw new SamlError('SAML_DOCTYPE', 'message contains a DOCTYPE or DTD declaration');
  const problems: string[] = [];
  const keep = (msg: string): void => void problems.push(msg);
  let doc: Document;
  try {
    const DOMParser = parser();
    doc = new DOMParser({ locator: {}, errorHandler: { warning: keep, error: keep, fatalError: keep } }).parseFromString(xml, 'text/xml');
  } catch (err) {
    // xmldom reports most faults to the handler, but throws a DOMException for some trees it will
    // not build (a CDATA section after the document element, say): still malformed XML, not a crash.
    throw new SamlError('SAML_MALFORMED', `XML parse: ${(err as Error).message}`, { cause: err });
  }
  if (problems.length > 0) throw new SamlError('SAML_MALFORMED', `XML parse: ${problems[0]!.trim()}`);
  if (!doc || !doc.documentElement) throw new SamlError('SAML_MALFORMED', 'no document element');
  for (let n = doc.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType === 10 /* DOCUMENT_TYPE_NODE */) throw new SamlError('SAML_DOCTYPE', 'message has a DocumentType node');
  }
  return doc;
}

/** decodeSamlPost turns the base64 SAMLResponse form field into XML text (SAML Bindings §3.5.4). */
export function decodeSamlPost(b64: string): string {
  const clean = b64.replace(/[\r\n\t ]/g, '');
  if (clean.length === 0 || clean.length > (MAX_XML_BYTES * 4) / 3 + 4 || !/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) {
    throw new SamlError('SAML_MALFORMED', 'SAMLResponse is empty, too large or not base64');
  }
  return Buffer.from(clean, 'base64').toString('utf8');
}

/** children lists the element children of node with the given namespace and local name. */
export function children(node: Node, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let n = node.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local) out.push(n as Element);
  }
  return out;
}

/** child is the only such child, or null when there is none; more than one is malformed. */
export function child(node: Node, ns: string, local: string): Element | null {
  const found = children(node, ns, local);
  if (found.length > 1) throw new SamlError('SAML_MALFORMED', `more than one ${local} element`);
  return found[0] ?? null;
}

/**
 * text is the text content of an element exactly as it stands, or '' for null. Not trimmed: a
 * NameID or attribute value is the string the IdP signed (xs:string keeps its white space), so
 * " alice@example.com" is never read as "alice@example.com"; an Issuer or Audience with white space
 * around it does not match the configured one (node-saml compares Audience the same way).
 */
export function text(el: Element | null): string {
  return el?.textContent ?? '';
}

/**
 * stringValue is the text of an element of a string type (NameID, Issuer, Audience: SAML Core
 * §2.2.3, §2.2.5, §2.5.1.4), which holds no elements. One that does is malformed: readers differ
 * on it (node-saml reads the text before the first child element, textContent all of it).
 */
export function stringValue(el: Element | null): string {
  if (el !== null && hasElementChild(el)) throw new SamlError('SAML_MALFORMED', `${el.localName} holds elements, not a string`);
  return text(el);
}

function hasElementChild(el: Element): boolean {
  for (let c = el.firstChild; c !== null; c = c.nextSibling) if (c.nodeType === 1) return true;
  return false;
}

/** attr is an attribute value, or null when absent (xmldom returns '' for both). */
export function attr(el: Element | null, name: string): string | null {
  return el !== null && el.hasAttribute(name) ? el.getAttribute(name) : null;
}

/** ResponseEnvelope is what the top-level Response says about itself (SAML Core §3.2.2, §3.3.3). */
export interface ResponseEnvelope {
  readonly id: string | null;
  readonly destination: string | null;
  readonly inResponseTo: string | null;
  readonly issuer: string | null;
  readonly statusCode: string;
  readonly statusDetail: string;
  readonly signed: boolean;
  /** assertions are the Assertion children of the Response (signed or not: untrusted). */
  readonly assertions: readonly Element[];
  /** signaturesElsewhere counts the ds:Signature elements that are no child of the Response or of one of its Assertions. */
  readonly signaturesElsewhere: number;
}

/** readEnvelope reads the Response root; anything but a samlp:Response is malformed. */
export function readEnvelope(doc: Document): ResponseEnvelope {
  const root = doc.documentElement;
  if (root.namespaceURI !== NS_PROTOCOL || root.localName !== 'Response') {
    throw new SamlError('SAML_MALFORMED', `root element is {${root.namespaceURI}}${root.localName}, not samlp:Response`);
  }
  if (children(root, NS_ASSERTION, 'EncryptedAssertion').length > 0) {
    throw new SamlError('SAML_MALFORMED', 'encrypted assertions are not supported');
  }
  const status = child(root, NS_PROTOCOL, 'Status');
  const code = status === null ? null : child(status, NS_PROTOCOL, 'StatusCode');
  const sub = code === null ? null : child(code, NS_PROTOCOL, 'StatusCode');
  const message = status === null ? '' : text(child(status, NS_PROTOCOL, 'StatusMessage'));
  const assertions = children(root, NS_ASSERTION, 'Assertion');
  const placed = [root, ...assertions].reduce((n, e) => n + children(e, NS_DSIG, 'Signature').length, 0);
  return {
    id: attr(root, 'ID'),
    destination: attr(root, 'Destination'),
    inResponseTo: attr(root, 'InResponseTo'),
    issuer: child(root, NS_ASSERTION, 'Issuer') === null ? null : stringValue(child(root, NS_ASSERTION, 'Issuer')),
    statusCode: attr(code, 'Value') ?? '',
    statusDetail: [attr(sub, 'Value'), message].filter(Boolean).join(' '),
    signed: children(root, NS_DSIG, 'Signature').length > 0,
    assertions,
    signaturesElsewhere: doc.getElementsByTagNameNS(NS_DSIG, 'Signature').length - placed,
  };
}

/** AssertionFacts is what the ACS uses from one assertion (SAML Core §2.3.3, §2.4, §2.5, §2.7). */
export interface AssertionFacts {
  readonly id: string;
  readonly issueInstant: number;
  readonly issuer: string;
  readonly signed: boolean;
  readonly nameId: string;
  /** recipients are the Recipient of each bearer SubjectConfirmationData (SAML Profiles §4.1.4.2). */
  readonly recipients: readonly string[];
  readonly confirmationNotOnOrAfter: readonly number[];
  /** confirmationNotBefore are the bearer NotBefore times, which SAML Profiles §4.1.4.2 says are absent. */
  readonly confirmationNotBefore: readonly number[];
  /** confirmationInResponseTo is the InResponseTo of each bearer SubjectConfirmationData. */
  readonly confirmationInResponseTo: readonly string[];
  readonly notBefore: number | null;
  readonly notOnOrAfter: number | null;
  /** audienceRestrictions lists the Audiences of each AudienceRestriction (SAML Core §2.5.1.4). */
  readonly audienceRestrictions: readonly (readonly string[])[];
  readonly sessionIndex: string;
  readonly attributes: ReadonlyMap<string, readonly string[]>;
}

/**
 * readAssertion reads one saml:Assertion element. Times are epoch ms; a bad time is malformed, and
 * so is a missing IssueInstant (SAML Core §2.3.3) or a Conditions NotBefore without NotOnOrAfter.
 */
export function readAssertion(a: Element): AssertionFacts {
  const subject = child(a, NS_ASSERTION, 'Subject');
  const recipients: string[] = [];
  const confirmationNotOnOrAfter: number[] = [];
  const confirmationNotBefore: number[] = [];
  const confirmationInResponseTo: string[] = [];
  for (const sc of subject === null ? [] : children(subject, NS_ASSERTION, 'SubjectConfirmation')) {
    if (attr(sc, 'Method') !== CM_BEARER) continue;
    const data = child(sc, NS_ASSERTION, 'SubjectConfirmationData');
    recipients.push(attr(data, 'Recipient') ?? '');
    confirmationInResponseTo.push(attr(data, 'InResponseTo') ?? '');
    const noa = time(attr(data, 'NotOnOrAfter'));
    if (noa !== null) confirmationNotOnOrAfter.push(noa);
    const nb = time(attr(data, 'NotBefore'));
    if (nb !== null) confirmationNotBefore.push(nb);
  }
  const conditions = child(a, NS_ASSERTION, 'Conditions');
  const audienceRestrictions = (conditions === null ? [] : children(conditions, NS_ASSERTION, 'AudienceRestriction')).map((r) =>
    children(r, NS_ASSERTION, 'Audience').map((el) => stringValue(el)),
  );
  const notBefore = time(attr(conditions, 'NotBefore'));
  const notOnOrAfter = time(attr(conditions, 'NotOnOrAfter'));
  if (notBefore !== null && notOnOrAfter === null) throw new SamlError('SAML_MALFORMED', 'Conditions has NotBefore but no NotOnOrAfter');
  const issueInstant = time(attr(a, 'IssueInstant'));
  if (issueInstant === null) throw new SamlError('SAML_MALFORMED', 'the Assertion has no IssueInstant');
  const attributes = new Map<string, string[]>();
  for (const st of children(a, NS_ASSERTION, 'AttributeStatement')) {
    for (const at of children(st, NS_ASSERTION, 'Attribute')) {
      const name = attr(at, 'Name') ?? '';
      // SAML Core §2.7.3.1 does not forbid an Attribute named twice, but readers disagree on it
      // (node-saml keeps the last one, a merge keeps both): which groups did the IdP mean?
      if (attributes.has(name)) throw new SamlError('SAML_MALFORMED', `Attribute ${JSON.stringify(name)} appears more than once`);
      // Tollgate reads text values only; a value holding elements (a NameID, say) has no one text form.
      const values = children(at, NS_ASSERTION, 'AttributeValue').filter((v) => !hasElementChild(v)).map((v) => text(v));
      attributes.set(name, values.filter((v) => v !== ''));
    }
  }
  const authn = children(a, NS_ASSERTION, 'AuthnStatement')[0] ?? null;
  return {
    id: attr(a, 'ID') ?? '',
    issueInstant,
    issuer: stringValue(child(a, NS_ASSERTION, 'Issuer')),
    signed: children(a, NS_DSIG, 'Signature').length > 0,
    nameId: subject === null ? '' : stringValue(child(subject, NS_ASSERTION, 'NameID')),
    recipients,
    confirmationNotOnOrAfter,
    confirmationNotBefore,
    confirmationInResponseTo,
    notBefore,
    notOnOrAfter,
    audienceRestrictions,
    sessionIndex: attr(authn, 'SessionIndex') ?? '',
    attributes,
  };
}

/** time parses an xs:dateTime in UTC (SAML Core §1.3.3); null when absent. */
function time(v: string | null): number | null {
  if (v === null) return null;
  const ms = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) || Number.isNaN(ms)) {
    throw new SamlError('SAML_MALFORMED', `time ${JSON.stringify(v)} is not an xs:dateTime in UTC`);
  }
  return ms;
}
