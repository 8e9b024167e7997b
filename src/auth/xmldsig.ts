/**
 * xmldsig: verifying the one XML Signature shape SAML uses, on a document we have parsed once.
 *
 *   element (Response or Assertion, with an ID)
 *     └─ ds:Signature (its only Signature child)
 *          ├─ ds:SignedInfo: exclusive c14n, RSA-SHA256/512, one Reference URI="#<the element's ID>"
 *          │                 with Transforms enveloped-signature + exclusive c14n, SHA-256/512 digest
 *          ├─ ds:SignatureValue
 *          └─ ds:KeyInfo (ignored: only the configured certificate is trusted)
 *
 * SAML Core §5.4 profiles XML Signature (XML-DSig Core 1.1 §3.2, core validation) down to this:
 * an enveloped signature over the element that carries it, referenced by that element's ID, with
 * exclusive c14n recommended. verifyEnvelopedSignature checks exactly that and nothing wider, and
 * returns the canonical bytes that the signature covers, which are all a caller may read (the
 * defence against signature wrapping: SAML Core §5.4.2, and "On Breaking SAML", USENIX Sec 2012).
 *
 * Canonicalization is xml-crypto's (the library node-saml verifies with); digest and RSA are
 * node:crypto with a KeyObject built once from the configured certificate. Unlike xml-crypto's
 * SignedXml, this does not re-parse the whole message and runs no XPath per check: both did most
 * of the work of an ACS validation (see bench/acs.ts).
 */
import { createHash, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ExclusiveCanonicalization } from 'xml-crypto';
import { SamlError } from './samlerror.js';
import { NS_DSIG, children, parseSamlXml } from './samlxml.js';

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** SIGNATURE_HASHES are the accepted SignatureMethods (RFC 6931 §2.3.2, §2.3.4): RSA with SHA-256 or better. */
const SIGNATURE_HASHES: Readonly<Record<string, string>> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': 'sha512',
};

/** DIGEST_HASHES are the accepted DigestMethods (XML Encryption §5.7.2, §5.7.4): SHA-256 or better. */
const DIGEST_HASHES: Readonly<Record<string, string>> = {
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};

/** ID_NAMES are the attribute names xml-crypto resolves a Reference URI against; one of them must be unique. */
const ID_NAMES = new Set(['ID', 'Id', 'id']);

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

interface Namespace {
  prefix: string;
  namespaceURI: string;
}

/**
 * verifyEnvelopedSignature checks the one ds:Signature child of `el` against `key` and returns the
 * canonical XML of `el` without that signature: the exact bytes whose digest the signature covers.
 * It throws SamlError SAML_SIGNATURE for anything else, including an ID that more than one
 * element of the document carries.
 */
export function verifyEnvelopedSignature(el: Element, key: KeyObject | readonly KeyObject[]): string {
  // Several keys during an IdP's certificate rollover: the signature must verify with one of them.
  const keys: readonly KeyObject[] = Array.isArray(key) ? key : [key as KeyObject];
  const sigs = children(el, NS_DSIG, 'Signature');
  if (sigs.length !== 1) throw fail(`${el.localName} carries ${sigs.length} Signature elements, not one`);
  const signature = sigs[0]!;
  const id = el.getAttribute('ID') ?? '';
  if (id === '') throw fail(`signed ${el.localName} has no ID`);
  checkUniqueId(el, id);

  // XML-DSig §4.1: SignedInfo, SignatureValue, then an optional KeyInfo. Object and anything else
  // are refused: SAML has no use for them, and ds:Object is where wrapping attacks hide originals.
  const parts = elementChildren(signature);
  const [signedInfo, signatureValue, ...rest] = parts;
  if (!isDsig(signedInfo, 'SignedInfo') || !isDsig(signatureValue, 'SignatureValue') || rest.some((p) => !isDsig(p, 'KeyInfo')) || rest.length > 1) {
    throw fail(`Signature of ${el.localName} is not SignedInfo, SignatureValue[, KeyInfo]: ${parts.map((p) => p.localName).join(', ')}`);
  }
  checkPlainSignature(signature);

  // Core validation, step 2 first (§3.2.2): the signature over the canonical SignedInfo.
  const method = elementChildren(signedInfo);
  const [c14nMethod, sigMethod] = method;
  if (!isDsig(c14nMethod, 'CanonicalizationMethod') || !isDsig(sigMethod, 'SignatureMethod')) {
    throw fail('SignedInfo does not start with CanonicalizationMethod, SignatureMethod');
  }
  const signedInfoC14n = canonicalize(c14nMethod.getAttribute('Algorithm') ?? '', signedInfo, prefixList(c14nMethod), null);
  const hash = SIGNATURE_HASHES[sigMethod.getAttribute('Algorithm') ?? ''];
  if (hash === undefined) throw fail(`SignatureMethod ${JSON.stringify(sigMethod.getAttribute('Algorithm'))} is not RSA with SHA-256 or better`);
  const notRsa = keys.find((k) => k.asymmetricKeyType !== 'rsa');
  if (notRsa !== undefined || keys.length === 0) throw fail(`the IdP certificate holds a ${notRsa?.asymmetricKeyType ?? 'missing'} key, not RSA`);
  const value = base64(signatureValue.textContent ?? '', 'SignatureValue');
  if (!keys.some((k) => rsaVerifies(hash, signedInfoC14n, k, value))) {
    throw fail(`the SignatureValue of ${el.localName} ${id} does not verify with the IdP certificate`);
  }

  // From here on only the signed bytes of SignedInfo are read (as xml-crypto does), not the DOM.
  const trusted = parseSamlXml(signedInfoC14n).documentElement;
  const refs = children(trusted, NS_DSIG, 'Reference');
  if (refs.length !== 1 || elementChildren(trusted).length !== 3) throw fail(`SignedInfo has ${refs.length} References, or other elements: one Reference only`);
  const ref = refs[0]!;
  if (ref.getAttribute('URI') !== `#${id}`) {
    throw fail(`the Reference URI ${JSON.stringify(ref.getAttribute('URI'))} does not name the ${el.localName} it signs (${id})`);
  }
  const transformLists = children(ref, NS_DSIG, 'Transforms');
  const [first, second, ...extra] = transformLists.length === 1 ? children(transformLists[0]!, NS_DSIG, 'Transform') : [];
  if (first?.getAttribute('Algorithm') !== ENVELOPED || second === undefined || extra.length > 0) {
    throw fail('the Reference Transforms are not enveloped-signature followed by one canonicalization');
  }
  const digestMethods = children(ref, NS_DSIG, 'DigestMethod');
  const digestValues = children(ref, NS_DSIG, 'DigestValue');
  if (digestMethods.length !== 1 || digestValues.length !== 1) throw fail('the Reference needs one DigestMethod and one DigestValue');
  const digestHash = DIGEST_HASHES[digestMethods[0]!.getAttribute('Algorithm') ?? ''];
  if (digestHash === undefined) throw fail(`DigestMethod ${JSON.stringify(digestMethods[0]!.getAttribute('Algorithm'))} is not SHA-256 or better`);

  // Step 1 (§3.2.1): the Reference digest over the element, its signature removed (enveloped).
  const signedXml = canonicalize(second.getAttribute('Algorithm') ?? '', el, prefixList(second), signature);
  const digest = createHash(digestHash).update(signedXml, 'utf8').digest();
  const expected = base64(digestValues[0]!.textContent ?? '', 'DigestValue');
  if (expected.length !== digest.length || !timingSafeEqual(expected, digest)) {
    throw fail(`the digest of ${el.localName} ${id} does not match its Reference: it was changed after signing`);
  }
  return signedXml;
}

/**
 * canonicalize runs exclusive c14n without comments over `el` and what it
 * contains, less `drop` (the enveloped signature, XML-DSig §6.6.4), with the namespaces `el`
 * inherits and the given InclusiveNamespaces PrefixList. The document is left as it was.
 */
function canonicalize(algorithm: string, el: Element, prefixes: string[], drop: Element | null): string {
  try {
    return canonicalizeWith(algorithm, el, prefixes, drop);
  } catch (err) {
    // xml-crypto throws plain Errors on node types it cannot render (an empty CDATA section, say).
    if (err instanceof SamlError) throw err;
    throw new SamlError('SAML_SIGNATURE', `${el.localName} cannot be canonicalized: ${(err as Error).message}`, { cause: err });
  }
}

function canonicalizeWith(algorithm: string, el: Element, prefixes: string[], drop: Element | null): string {
  // Exclusive c14n only (SAML Core §5.4.3 recommends it, and every IdP we know signs with it).
  // Inclusive c14n of a nested element pulls in the namespaces of its ancestors, and implementations
  // disagree on which: xml-crypto's verifier takes them from the first SignedInfo in the document,
  // so node-saml refuses an inclusive-c14n Assertion signature inside a signed Response. Where two
  // verifiers can read one signature two ways, an attacker gets to choose; we accept neither.
  if (algorithm !== EXC_C14N) throw fail(`canonicalization ${JSON.stringify(algorithm)} is not exclusive c14n without comments`);
  const ancestorNamespaces = inheritedNamespaces(el);
  if (!prefixes.some((p) => ancestorNamespaces.some((ns) => ns.prefix === p))) {
    // What ExclusiveCanonicalization.process does when no inclusive prefix is bound on an ancestor.
    return excC14n(drop).processInner(el, [], '', DEFAULT_NS_FOR_PREFIX, prefixes);
  }
  // process renders an inclusive prefix bound on an ancestor by declaring it on the element it is
  // given, so that element must be a copy (and the signature to leave out, the copy's).
  const copy = el.cloneNode(true) as Element;
  const copyDrop = drop === null ? null : copy.childNodes[Array.from(el.childNodes).indexOf(drop)]!;
  return excC14n(copyDrop).process(copy, { ancestorNamespaces, inclusiveNamespacesPrefixList: prefixes, defaultNsForPrefix: DEFAULT_NS_FOR_PREFIX });
}

const DEFAULT_NS_FOR_PREFIX = { ds: NS_DSIG };

type ExcC14n = ExclusiveCanonicalization;
let ExcC14nClass: (new (drop: Node | null) => ExcC14n) | null = null;

/**
 * excC14n is xml-crypto's exclusive canonicalizer leaving out one node and what it contains:
 * the enveloped-signature transform applied as the node-set it defines, without copying the element.
 * xml-crypto is loaded on the first signature checked, so a worker that never sees a sign-in never
 * holds it (data-plane memory).
 */
function excC14n(drop: Node | null): ExcC14n {
  if (ExcC14nClass === null) {
    const { ExclusiveCanonicalization: Base } = createRequire(import.meta.url)('xml-crypto') as typeof import('xml-crypto');
    ExcC14nClass = class extends Base {
      constructor(private readonly drop: Node | null) {
        super();
      }

      override processInner(node: Node, ...rest: [unknown, unknown, unknown, string[]]): string {
        return node === this.drop ? '' : super.processInner(node, ...rest);
      }
    };
  }
  return new ExcC14nClass(drop);
}

/**
 * inheritedNamespaces are the namespace declarations in scope at `el` from its ancestors, nearest
 * first, less those `el` declares itself and its own prefix (xml-crypto's findAncestorNs, which the
 * signer used when it computed the digest).
 */
function inheritedNamespaces(el: Element): Namespace[] {
  const own = new Set<string>([el.prefix ?? '']);
  for (const a of Array.from(el.attributes)) if (a.name === 'xmlns' || a.name.startsWith('xmlns:')) own.add(a.name.slice(6));
  const seen = new Set<string>();
  const out: Namespace[] = [];
  for (let p = el.parentNode; p !== null && p.nodeType === 1; p = p.parentNode) {
    for (const a of Array.from((p as Element).attributes)) {
      if (a.name !== 'xmlns' && !a.name.startsWith('xmlns:')) continue;
      const prefix = a.name.slice(6);
      if (seen.has(prefix)) continue;
      seen.add(prefix);
      if (a.value !== '' && !own.has(prefix)) out.push({ prefix, namespaceURI: a.value });
    }
  }
  return out;
}

/**
 * prefixList reads the ec:InclusiveNamespaces PrefixList of a c14n method or transform (Exclusive
 * C14N §3). Like xml-crypto, it matches the element by local name alone.
 */
function prefixList(method: Element): string[] {
  return elementChildren(method)
    .filter((n) => n.localName === 'InclusiveNamespaces')
    .flatMap((n) => (n.getAttribute('PrefixList') ?? '').split(/\s+/).filter(Boolean));
}

/**
 * checkUniqueId refuses a document in which anything but `el` carries `id` in an ID, Id or id
 * attribute (of any namespace): with two candidates, which one a Reference means is ambiguous.
 */
function checkUniqueId(el: Element, id: string): void {
  let count = 0;
  // Depth-first, without recursion: the message's nesting is the sender's choice.
  const stack: Node[] = [el.ownerDocument];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    for (let c = n.firstChild; c !== null; c = c.nextSibling) {
      if (c.nodeType !== 1) continue;
      const attrs = (c as Element).attributes;
      for (let i = 0; i < attrs.length; i++) {
        const a = attrs[i]!;
        if (a.value === id && ID_NAMES.has(a.localName ?? a.name) && (c !== el || ++count > 1)) {
          throw fail(`ID ${id} is carried by more than one element (signature wrapping?)`);
        }
      }
      stack.push(c);
    }
  }
}

/** KEY_INFO_NAMES are the elements a KeyInfo may hold (XML-DSig §4.5, §4.5.2, §4.5.4): names of keys and certificates. */
const KEY_INFO_NAMES = new Set([
  'KeyName', 'KeyValue', 'RSAKeyValue', 'Modulus', 'Exponent',
  'X509Data', 'X509Certificate', 'X509IssuerSerial', 'X509IssuerName', 'X509SerialNumber', 'X509SubjectName', 'X509SKI',
]);

/**
 * checkPlainSignature refuses a ds:Signature that holds a comment, processing instruction or CDATA
 * section anywhere, or a KeyInfo with anything but key and certificate names. None of them is in
 * what an IdP writes; each is read differently by different verifiers (xml-crypto reads a
 * DigestValue or SignatureValue up to its first comment, and counts every Transform below the
 * Signature, KeyInfo included), so a signature that carries one means different things to them.
 * KeyInfo is not read at all: only the configured certificate counts.
 */
function checkPlainSignature(signature: Element): void {
  const stack: [Node, boolean][] = [[signature, false]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [n, inKeyInfo] = top;
    for (let c = n.firstChild; c !== null; c = c.nextSibling) {
      if (c.nodeType === 4 || c.nodeType === 7 || c.nodeType === 8) throw fail(`the Signature holds a ${c.nodeName} node`);
      if (c.nodeType !== 1) continue;
      const e = c as Element;
      if (inKeyInfo && (e.namespaceURI !== NS_DSIG || !KEY_INFO_NAMES.has(e.localName ?? ''))) throw fail(`KeyInfo holds {${e.namespaceURI}}${e.localName}`);
      stack.push([e, inKeyInfo || isDsig(e, 'KeyInfo')]);
    }
  }
}

/** rsaVerifies is RSASSA-PKCS1-v1_5 (RFC 3447 §8.2, XML-DSig §6.4.2); a malformed value is false, not an exception. */
function rsaVerifies(hash: string, signedInfoC14n: string, key: KeyObject, value: Buffer): boolean {
  try {
    return verify(hash, Buffer.from(signedInfoC14n, 'utf8'), key, value);
  } catch {
    // OpenSSL refuses some malformed values (longer than the modulus) by throwing; they do not verify.
    return false;
  }
}

function elementChildren(n: Node): Element[] {
  const out: Element[] = [];
  for (let c = n.firstChild; c !== null; c = c.nextSibling) if (c.nodeType === 1) out.push(c as Element);
  return out;
}

function isDsig(n: Element | undefined, local: string): n is Element {
  return n !== undefined && n.namespaceURI === NS_DSIG && n.localName === local;
}

function base64(text: string, what: string): Buffer {
  const clean = text.replace(/\s+/g, '');
  if (!BASE64.test(clean)) throw fail(`${what} is not base64`);
  return Buffer.from(clean, 'base64');
}

function fail(reason: string): SamlError {
  return new SamlError('SAML_SIGNATURE', reason);
}
