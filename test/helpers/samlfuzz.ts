/**
 * samlfuzz: signed SAML responses and what an attacker can do to them, shared by the differential
 * test (ours against node-saml), the fuzz test and `npm run fuzz:saml`.
 *
 *   signedBase (xml-crypto, the second signer) / lab IdP logins  -> Base: signed XML + the signed identity
 *   FORGERIES (samlforgeries.ts): the hostile classes the SAML tests already know, as functions of a Base
 *   MUTATIONS: small seeded changes (move, duplicate, rename, namespaces, comments, whitespace,
 *              encodings, a second Assertion or Signature, colliding IDs, XSW) applied after signing
 *
 * Everything is driven by a seeded PRNG, so one seed always yields the same cases from the same bases.
 */
import { buildLoginResponseXml } from '../../src/labidp/response.js';
import type { LabUser } from '../../src/labidp/users.js';
import {
  ALG, ASSERTION_XPATH, RESPONSE_XPATH, el, mutate, parse, resignAs, serialize, signAs,
  xswSameId, xswSiblingAssertion, xswWrappedOriginal, xswWrappedResponse, type SignAs,
} from './saml.js';

const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';

import { Rng } from './rng.js';

export { Rng };

/** Signed is what a Base's signatures cover: the identity an accepting validator may report, exactly. */
export interface Signed {
  readonly nameId: string;
  /** attributes as the IdP signed them, empty values left out. */
  readonly attributes: Readonly<Record<string, readonly string[]>>;
  readonly assertionId: string;
  readonly inResponseTo: string;
}

/** Base is one signed, valid response. */
export interface Base {
  readonly label: string;
  readonly xml: string;
  readonly signed: Signed;
}

/** Setting is the SP and IdP a corpus is made for. */
export interface Setting {
  readonly idpEntityId: string;
  readonly spEntityId: string;
  readonly acsUrl: string;
  readonly keyPem: string;
  readonly certPem: string;
  /** attacker signs what an attacker can sign: a key pair that is not the IdP's. */
  readonly attacker: { readonly keyPem: string; readonly certPem: string };
}

/** EVIL_NAME is the identity every forgery tries to slip in; an accepted response must never name it. */
export const EVIL_NAME = 'mallory@lab.example';

/** signedOf is the identity a response built for `user` carries (what buildLoginResponseXml writes). */
export function signedOf(user: LabUser, assertionId: string, inResponseTo: string): Signed {
  const attributes: Record<string, string[]> = {};
  if (user.displayName) attributes.DisplayName = [user.displayName];
  if (user.groups.length > 0) attributes.memberOf = [...user.groups];
  if (user.department) attributes.Department = [user.department];
  return { nameId: user.loginName, attributes, assertionId, inResponseTo };
}

/** Layout is how the second signer writes and signs a response: the shapes real IdPs use. */
export interface Layout {
  readonly assertion?: SignAs;
  readonly response?: SignAs;
  /** prefix renames the assertion namespace prefix (`saml2`, as Shibboleth and Entra write it); '' makes it the default namespace on the Assertion. */
  readonly prefix?: string;
  /** pretty indents the XML before signing, as some IdPs send it. */
  readonly pretty?: boolean;
}

/** LAYOUTS are the second signer's variants; each must be accepted by both validators. */
export const LAYOUTS: Readonly<Record<string, Layout>> = {
  'exclusive c14n, RSA-SHA256': {},
  'RSA-SHA512, SHA-512 digests': { assertion: { signature: ALG.rsaSha512, digest: ALG.sha512 }, response: { signature: ALG.rsaSha512, digest: ALG.sha512 } },
  'InclusiveNamespaces prefixes': { assertion: { prefixes: ['samlp', 'xs', 'xsi'] } },
  'saml2 prefix': { prefix: 'saml2' },
  'default namespace on the Assertion': { prefix: '' },
  'pretty-printed': { pretty: true },
};

/** signedBase builds a response for `user` answering `inResponseTo` and signs it as `layout` says, with the IdP key. */
export function signedBase(s: Setting, user: LabUser, inResponseTo: string, layout: Layout, label: string, now = Date.now()): Base {
  const built = buildLoginResponseXml({
    idpEntityId: s.idpEntityId, spEntityId: s.spEntityId, acsUrl: s.acsUrl, inResponseTo, user, now, lifetimeMs: 5 * 60_000,
  });
  let xml = built.xml;
  if (layout.prefix !== undefined) xml = withAssertionPrefix(xml, layout.prefix);
  if (layout.pretty === true) xml = prettyPrint(xml);
  xml = resignAs(xml, s.keyPem, s.certPem, layout.assertion ?? {}, layout.response ?? {});
  return { label, xml, signed: signedOf(user, built.assertionId, inResponseTo) };
}

function withAssertionPrefix(xml: string, prefix: string): string {
  if (prefix !== '') return xml.replaceAll('saml:', `${prefix}:`).replace('xmlns:saml=', `xmlns:${prefix}=`);
  // The Response keeps saml: for its Issuer; inside the Assertion, saml: elements become unprefixed.
  const start = xml.indexOf('<saml:Assertion ');
  const end = xml.indexOf('</saml:Assertion>') + '</saml:Assertion>'.length;
  const inner = xml
    .slice(start, end)
    .replaceAll('<saml:', '<')
    .replaceAll('</saml:', '</')
    .replace('<Assertion ', `<Assertion xmlns="${NS_ASSERTION}" `);
  return xml.slice(0, start) + inner + xml.slice(end);
}

function prettyPrint(xml: string): string {
  // Whitespace between tags only, never inside text content, as an indenting serializer writes it.
  return xml.replaceAll('><', '>\n  <');
}

/** Mutation is one small change an attacker makes to a signed response without the IdP's key. */
export interface Mutation {
  readonly name: string;
  readonly apply: (xml: string, rng: Rng, b: Base, s: Setting) => string;
}

function elements(doc: Document): Element[] {
  const out: Element[] = [];
  const stack: Node[] = [doc.documentElement];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    out.push(n as Element);
    for (let c = n.lastChild; c !== null; c = c.previousSibling) if (c.nodeType === 1) stack.push(c);
  }
  return out;
}

function textNodes(doc: Document): Text[] {
  const out: Text[] = [];
  for (const e of elements(doc)) for (let c = e.firstChild; c !== null; c = c.nextSibling) if (c.nodeType === 3 || c.nodeType === 4) out.push(c as Text);
  return out;
}

/** insertAnywhere puts node at a random child position of a random element that does not lie within it. */
function insertAnywhere(doc: Document, node: Node, rng: Rng): void {
  const targets = elements(doc).filter((e) => !contains(node, e));
  const target = rng.pick(targets);
  const kids = Array.from(target.childNodes);
  target.insertBefore(node, kids.length === 0 ? null : (kids[rng.int(kids.length + 1)] ?? null));
}

function contains(outer: Node, inner: Node): boolean {
  for (let n: Node | null = inner; n !== null; n = n.parentNode) if (n === outer) return true;
  return false;
}

/** dom wraps a DOM mutation; a change xmldom cannot make (a namespace error, say) leaves the XML as it was. */
function dom(fn: (doc: Document, rng: Rng, b: Base, s: Setting) => void): Mutation['apply'] {
  return (xml, rng, b, s) => {
    const doc = parse(xml);
    if (!doc?.documentElement) return xml;
    fn(doc, rng, b, s);
    return serialize(doc);
  };
}

function nonRoot(doc: Document, rng: Rng): Element {
  const all = elements(doc);
  return all.length > 1 ? rng.pick(all.slice(1)) : all[0]!;
}

const SAML_NAMES = ['Assertion', 'Response', 'Signature', 'SignedInfo', 'Reference', 'Issuer', 'NameID', 'Subject', 'Attribute', 'AttributeValue', 'Object', 'Extensions', 'Conditions'];
const NAMESPACES = [NS_ASSERTION, NS_PROTOCOL, NS_DSIG, 'urn:evil', ''];
const ID_ATTRS = ['ID', 'Id', 'id', 'xml:id'];
const ENCODINGS = ['UTF-8', 'utf-8', 'UTF-16', 'ISO-8859-1', 'US-ASCII', 'EBCDIC'];

/** evilAssertion is a copy of the document's Assertion that names EVIL_NAME, with its signature or without. */
function evilAssertion(doc: Document, id: string | null, stripSignature: boolean): Element {
  const evil = el(doc, 'Assertion').cloneNode(true) as Element;
  if (id !== null) evil.setAttribute('ID', id);
  if (stripSignature) for (const s of Array.from(evil.getElementsByTagNameNS(NS_DSIG, 'Signature'))) s.parentNode!.removeChild(s);
  const n = evil.getElementsByTagNameNS(NS_ASSERTION, 'NameID')[0];
  if (n !== undefined) n.textContent = EVIL_NAME;
  return evil;
}

/** MUTATIONS are the fuzzer's operators. Each keeps the IdP's signatures as they are (no IdP key). */
export const MUTATIONS: readonly Mutation[] = [
  { name: 'move an element', apply: dom((doc, rng) => insertAnywhere(doc, nonRoot(doc, rng), rng)) },
  { name: 'duplicate an element', apply: dom((doc, rng) => insertAnywhere(doc, nonRoot(doc, rng).cloneNode(true), rng)) },
  {
    name: 'remove an element',
    apply: dom((doc, rng) => {
      const e = nonRoot(doc, rng);
      e.parentNode!.removeChild(e);
    }),
  },
  {
    name: 'rename an element',
    apply: dom((doc, rng) => {
      const e = nonRoot(doc, rng);
      const local = rng.chance(0.5) ? rng.pick(SAML_NAMES) : e.localName!;
      const ns = rng.chance(0.5) ? rng.pick(NAMESPACES) : e.namespaceURI;
      const prefix = ns === '' || ns === null ? '' : rng.pick(['saml', 'samlp', 'ds', 'x', 'saml2']);
      const renamed = doc.createElementNS(ns || null, prefix ? `${prefix}:${local}` : local);
      for (const a of Array.from(e.attributes)) renamed.setAttributeNode(a.cloneNode(true) as Attr);
      while (e.firstChild) renamed.appendChild(e.firstChild);
      e.parentNode!.replaceChild(renamed, e);
    }),
  },
  {
    name: 'rename an attribute',
    apply: dom((doc, rng) => {
      const e = rng.pick(elements(doc).filter((x) => x.attributes.length > 0));
      const a = rng.pick(Array.from(e.attributes));
      const name = rng.pick([...ID_ATTRS, a.name.toLowerCase(), a.name.toUpperCase(), `x:${a.name}`]);
      e.removeAttributeNode(a);
      if (name.startsWith('x:')) e.setAttributeNS('urn:evil', name, a.value);
      else if (name === 'xml:id') e.setAttributeNS('http://www.w3.org/XML/1998/namespace', name, a.value);
      else e.setAttribute(name, a.value);
    }),
  },
  {
    name: 'remove an attribute',
    apply: dom((doc, rng) => {
      const e = rng.pick(elements(doc).filter((x) => x.attributes.length > 0));
      e.removeAttributeNode(rng.pick(Array.from(e.attributes)));
    }),
  },
  {
    name: 'colliding ID',
    apply: dom((doc, rng) => {
      const signedIds = elements(doc).map((e) => e.getAttribute('ID')).filter((v): v is string => !!v);
      const e = rng.pick(elements(doc));
      const attr = rng.pick(ID_ATTRS);
      if (attr === 'xml:id') e.setAttributeNS('http://www.w3.org/XML/1998/namespace', attr, rng.pick(signedIds));
      else e.setAttribute(attr, rng.pick(signedIds));
    }),
  },
  {
    name: 'namespace redeclaration',
    apply: dom((doc, rng) => {
      const e = rng.pick(elements(doc));
      const prefix = rng.pick(['saml', 'samlp', 'ds', 'xs', 'xsi', '']);
      e.setAttributeNS('http://www.w3.org/2000/xmlns/', prefix ? `xmlns:${prefix}` : 'xmlns', rng.pick(NAMESPACES.filter(Boolean)));
    }),
  },
  {
    name: 'evil NameID in another namespace',
    apply: dom((doc, rng) => {
      const n = doc.createElementNS(rng.pick(['urn:evil', NS_PROTOCOL, NS_DSIG]), 'saml:NameID');
      n.textContent = EVIL_NAME;
      const subject = el(doc, 'Subject');
      subject.insertBefore(n, rng.chance(0.5) ? subject.firstChild : null);
    }),
  },
  {
    name: 'comment',
    apply: dom((doc, rng) => {
      const texts = textNodes(doc);
      if (texts.length > 0 && rng.chance(0.5)) {
        const t = rng.pick(texts);
        const at = rng.int(t.data.length + 1);
        t.parentNode!.insertBefore(doc.createTextNode(t.data.slice(0, at)), t);
        t.parentNode!.insertBefore(doc.createComment(rng.pick(['', 'x', ` ${EVIL_NAME} `])), t);
        t.data = t.data.slice(at);
      } else insertAnywhere(doc, doc.createComment('c'), rng);
    }),
  },
  { name: 'processing instruction', apply: dom((doc, rng) => insertAnywhere(doc, doc.createProcessingInstruction(rng.pick(['x', 'xml-stylesheet']), 'href="a"'), rng)) },
  {
    name: 'whitespace',
    apply: dom((doc, rng) => {
      const texts = textNodes(doc);
      if (texts.length > 0 && rng.chance(0.5)) {
        const t = rng.pick(texts);
        t.data = rng.chance(0.5) ? ` ${t.data}\n` : `${t.data}\t`;
      } else insertAnywhere(doc, doc.createTextNode(rng.pick([' ', '\n  ', '\t', '\r\n'])), rng);
    }),
  },
  {
    name: 'CDATA section',
    apply: (xml, rng) => {
      // Text in a CDATA section reads as the same characters (a broken one as more), as strings:
      // xmldom will not put a CDATA node where a text node was.
      const texts = [...xml.matchAll(/>([^<&]+)</g)];
      if (texts.length === 0) return xml;
      const m = rng.pick(texts);
      const inner = rng.chance(0.8) ? m[1]! : `${m[1]!}]]`;
      return `${xml.slice(0, m.index + 1)}<![CDATA[${inner}]]>${xml.slice(m.index + 1 + m[1]!.length)}`;
    },
  },
  { name: 'CRLF line ends', apply: (xml) => xml.replaceAll('><', '>\r\n<') },
  {
    name: 'character reference',
    apply: (xml, rng) => {
      // A character reference reads as the same character, so the canonical bytes do not change.
      const at = xml.indexOf('>', rng.int(xml.length));
      if (at < 0 || xml[at + 1] === '<' || xml[at + 1] === undefined) return xml;
      const c = xml.codePointAt(at + 1)!;
      return `${xml.slice(0, at + 1)}&#x${c.toString(16)};${xml.slice(at + 1 + String.fromCodePoint(c).length)}`;
    },
  },
  {
    name: 'XML declaration and encoding',
    apply: (xml, rng) => {
      const body = xml.replace(/^<\?xml[^>]*\?>/, '');
      const decl = `<?xml version="${rng.pick(['1.0', '1.1'])}" encoding="${rng.pick(ENCODINGS)}"?>`;
      return `${rng.chance(0.3) ? '\ufeff' : ''}${rng.chance(0.8) ? decl : ''}${body}`;
    },
  },
  {
    name: 'homoglyph in the NameID',
    apply: (xml, rng, b) => xml.replace(`>${b.signed.nameId}<`, `>${b.signed.nameId.replace(rng.pick(['a', 'l', 'e', 'o']), (c) => ({ a: '\u0430', l: '\u04cf', e: '\u0435', o: '\u043e' })[c]!)}<`),
  },
  {
    name: 'a second Assertion',
    apply: dom((doc, rng) => insertAnywhere(doc, evilAssertion(doc, rng.chance(0.3) ? null : `_evil${rng.int(1e9)}`, rng.chance(0.5)), rng)),
  },
  {
    name: 'a second Assertion signed by another key',
    apply: (xml, rng, b, s) => {
      const first = rng.chance(0.5);
      // The attacker signs the first Assertion (the evil one when it was put first) with its own key.
      return attackerSigned(`${first}`, xml, b, (x) => signAs(mutate(x, (doc) => {
        const signed = el(doc, 'Assertion');
        const evil = evilAssertion(doc, '_evil_signed', true);
        signed.parentNode!.insertBefore(evil, first ? signed : signed.nextSibling);
      }), ASSERTION_XPATH, s.attacker.keyPem, s.attacker.certPem));
    },
  },
  {
    name: 'a second Signature',
    apply: dom((doc, rng) => {
      const sigs = Array.from(doc.getElementsByTagNameNS(NS_DSIG, 'Signature'));
      if (sigs.length === 0) return;
      insertAnywhere(doc, rng.pick(sigs).cloneNode(true), rng);
    }),
  },
  {
    name: 'XSW variant',
    apply: (xml, rng) =>
      rng.pick([xswSiblingAssertion, xswWrappedOriginal, xswSameId, xswWrappedResponse, xswAssertionInsideEvil, xswOriginalInExtensions])(xml, EVIL_NAME),
  },
  {
    name: 'attacker-signed Response around the signed Assertion',
    apply: (xml, _rng, b, s) => attackerSigned('response', xml, b, (x) => signAs(stripResponseSignature(x), RESPONSE_XPATH, s.attacker.keyPem, s.attacker.certPem)),
  },
  {
    name: 'flip a character',
    apply: (xml, rng) => {
      const at = rng.int(xml.length);
      return xml.slice(0, at) + String.fromCharCode(xml.charCodeAt(at) ^ (1 << rng.int(7))) + xml.slice(at + 1);
    },
  },
  { name: 'truncate', apply: (xml, rng) => xml.slice(0, rng.int(xml.length)) },
];

/**
 * attackerSigned memoizes what xml-crypto signs with the attacker's key, for bases only: xml-crypto
 * takes up to 200 ms to sign a document that earlier steps have grown, which would be most of a
 * bounded run.
 */
function attackerSigned(how: string, xml: string, b: Base, sign: (xml: string) => string): string {
  // Only on the base itself, so each base is signed at most once each way; later steps still mutate the result.
  if (xml !== b.xml) throw new Error('the attacker signs bases only');
  const key = `${how}\n${xml}`;
  let out = SIGNED_MEMO.get(key);
  if (out === undefined) {
    if (SIGNED_MEMO.size > 2_000) SIGNED_MEMO.clear();
    out = sign(xml);
    SIGNED_MEMO.set(key, out);
  }
  return out;
}

const SIGNED_MEMO = new Map<string, string>();

function stripResponseSignature(xml: string): string {
  return mutate(xml, (doc) => {
    for (const s of Array.from(doc.documentElement.childNodes)) if ((s as Element).localName === 'Signature') doc.documentElement.removeChild(s);
  });
}

/** xswAssertionInsideEvil nests the signed Assertion inside an unsigned evil one that takes its place (XSW 5/6 shape). */
function xswAssertionInsideEvil(xml: string, nameId: string): string {
  return mutate(xml, (doc) => {
    const signed = el(doc, 'Assertion');
    const evil = signed.cloneNode(true) as Element;
    evil.setAttribute('ID', '_evil_outer');
    for (const s of Array.from(evil.getElementsByTagNameNS(NS_DSIG, 'Signature'))) s.parentNode!.removeChild(s);
    el(evil, 'NameID').textContent = nameId;
    signed.parentNode!.replaceChild(evil, signed);
    evil.appendChild(signed);
  });
}

/** xswOriginalInExtensions moves the signed Assertion into samlp:Extensions and puts an evil one in its place (XSW 7/8 shape). */
function xswOriginalInExtensions(xml: string, nameId: string): string {
  return mutate(xml, (doc) => {
    const root = doc.documentElement;
    const signed = el(doc, 'Assertion');
    const evil = signed.cloneNode(true) as Element;
    el(evil, 'NameID').textContent = nameId;
    const ext = doc.createElementNS(NS_PROTOCOL, 'samlp:Extensions');
    root.replaceChild(evil, signed);
    ext.appendChild(signed);
    root.insertBefore(ext, evil);
  });
}

/** FuzzCase is one mutated response and how it was made. */
export interface FuzzCase {
  readonly base: Base;
  readonly steps: readonly string[];
  readonly xml: string;
}

/** fuzzCase applies one to three mutations, chosen by rng, to a base chosen by rng. */
export function fuzzCase(bases: readonly Base[], s: Setting, rng: Rng): FuzzCase {
  const base = rng.pick(bases);
  let xml = base.xml;
  const steps: string[] = [];
  for (let i = 1 + rng.int(3); i > 0; i--) {
    const m = rng.pick(MUTATIONS);
    try {
      xml = m.apply(xml, rng, base, s);
      steps.push(m.name);
    } catch {
      // The operator cannot work on what earlier steps left (XML xmldom will not read, a tree it
      // will not build): this step changes nothing. The validators never see the exception.
    }
  }
  return { base, steps, xml };
}

/** sameAttributes compares attribute maps exactly: names, values and their order. */
export function sameAttributes(got: ReadonlyMap<string, readonly string[]>, want: Readonly<Record<string, readonly string[]>>): boolean {
  const w = Object.entries(want);
  return got.size === w.length && w.every(([k, v]) => {
    const g = got.get(k);
    return g !== undefined && g.length === v.length && g.every((x, i) => x === v[i]);
  });
}
