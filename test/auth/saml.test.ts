import t, { type Test } from 'tap';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { openStore } from '../../src/sessions/open.js';
import type { Store } from '../../src/sessions/store.js';
import { SamlError, SamlSp, defaultAcsUrl, spEntityId, withIdpDefaults, type IdpSettingsInput } from '../../src/auth/saml.js';
import { makeSigningPair, startLabIdp, type LabIdpOptions } from '../../src/labidp/idp.js';
import type { LabUser } from '../../src/labidp/users.js';
import { startRedis } from '../helpers/redis.js';
import {
  ALG, ASSERTION_XPATH, decode, el, encode, labLogin, mutate, resign, resignAs as resignWith, stripSignatures, withDoctype, type SignAs,
  xswSameId, xswSiblingAssertion, xswWrappedOriginal, xswWrappedResponse,
} from '../helpers/saml.js';

const cloud = 'lab.tollgate.test';
const orgId = '1001';
const entityId = spEntityId(cloud, orgId, false);
const acsUrl = defaultAcsUrl(cloud);
const signing = makeSigningPair();
const other = makeSigningPair('Not the IdP');

const users: LabUser[] = [
  { loginName: 'alice@lab.example', password: 'alice-pw', displayName: 'Alice Adams', department: 'Engineering', groups: ['eng', 'vpn-users'] },
  { loginName: 'bob@lab.example', password: 'bob-pw', displayName: 'Bob Brown', department: 'Sales', groups: ['sales'] },
  { loginName: 'carol@lab.example', password: 'carol-pw', displayName: 'Carol Clark', department: '', groups: [] },
];

interface Rig {
  sp: SamlSp;
  store: Store;
  /** login starts a login at the SP and signs in at the lab IdP; returns what the browser would post. */
  login(user?: LabUser): Promise<{ samlResponse: string; relayState: string; xml: string }>;
}

async function rig(
  tt: Test,
  o: { idp?: Partial<LabIdpOptions>; sp?: Partial<IdpSettingsInput>; store?: Store } = {},
): Promise<Rig> {
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId: entityId, acsUrl, ...signing, ...o.idp });
  tt.teardown(() => idp.close());
  let store = o.store;
  if (store === undefined) {
    const own = new EmbeddedStore({ path: tt.testdir() });
    tt.teardown(() => own.close());
    store = own;
  }
  const settings = withIdpDefaults({
    id: 'okta', name: 'Lab', ssoUrl: idp.ssoUrl, idpCertPem: idp.certPem, idpEntityId: idp.entityId, ...o.sp,
  });
  const sp = new SamlSp({ idp: settings, cloud, orgId, store });
  let n = 0;
  return {
    sp,
    store,
    async login(user = users[0]!) {
      const { url } = await sp.authorizeUrl(`relay-${++n}`);
      return labLogin(url, user.loginName, user.password);
    },
  };
}

/** refused expects validate to throw SamlError with code. */
async function refused(tt: Test, p: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await p;
    tt.fail(`${what}: accepted`);
  } catch (err) {
    tt.type(err, SamlError, `${what}: a SamlError`);
    tt.equal((err as SamlError).code, code, `${what}: ${code} (${(err as SamlError).reason})`);
  }
}

t.test('a lab login yields the identity from the signed assertion', async (t) => {
  const r = await rig(t);
  const post = await r.login();
  const id = await r.sp.validate(post.samlResponse, post.relayState);
  t.equal(id.loginName, 'alice@lab.example');
  t.equal(id.displayName, 'Alice Adams');
  t.same(id.groups, ['eng', 'vpn-users'], 'memberOf with many values');
  t.equal(id.department, 'Engineering');
  t.match(id.assertionId, /^_[0-9a-f]{40}$/);
  t.equal(id.sessionIndex, id.assertionId, 'the lab IdP uses the assertion ID as session index');
  t.equal(id.issuer, r.sp.idp.idpEntityId);
  t.ok(id.notOnOrAfter > Date.now() && id.notOnOrAfter <= Date.now() + 5 * 60_000 + 1000);
  t.equal(post.relayState, 'relay-1', 'RelayState is echoed');
  t.match(post.xml, /rsa-sha256/, 'signed with RSA-SHA256');
  t.match(post.xml, /xmlenc#sha256/, 'digests with SHA-256');
});

t.test('memberOf may have one value or be absent', async (t) => {
  const r = await rig(t);
  const bob = await r.login(users[1]);
  t.same((await r.sp.validate(bob.samlResponse, bob.relayState)).groups, ['sales']);
  const carol = await r.login(users[2]);
  const id = await r.sp.validate(carol.samlResponse, carol.relayState);
  t.same(id.groups, []);
  t.equal(id.department, '');
});

t.test('the login name can come from an attribute, case-sensitively', async (t) => {
  const r = await rig(t, { sp: { loginNameAttribute: 'DisplayName' } });
  const post = await r.login();
  t.equal((await r.sp.validate(post.samlResponse, post.relayState)).loginName, 'Alice Adams');
  const r2 = await rig(t, { sp: { loginNameAttribute: 'displayname' } });
  const post2 = await r2.login();
  await refused(t, r2.sp.validate(post2.samlResponse, post2.relayState), 'SAML_NO_LOGIN_NAME', 'attribute name in another case');
});

t.test('a response signed only on the assertion is accepted when only assertions must be signed', async (t) => {
  const r = await rig(t, { idp: { signResponse: false }, sp: { wantResponseSigned: false } });
  const post = await r.login();
  t.equal((await r.sp.validate(post.samlResponse, post.relayState)).loginName, 'alice@lab.example');
});

t.test('refusals', async (t) => {
  const r = await rig(t);
  const { keyPem, certPem } = signing;
  /** craft logs in, changes the XML, and re-signs it with the IdP's own key unless told otherwise. */
  const craft = async (fn: (xml: string) => string, opt: { resign?: boolean } = {}): Promise<[string, string]> => {
    const post = await r.login();
    const xml = fn(post.xml);
    return [encode(opt.resign === false ? xml : resign(xml, keyPem, certPem)), post.relayState];
  };
  const setText = (name: string, value: string) => (xml: string) =>
    mutate(xml, (doc) => {
      const e = el(doc, name);
      e.textContent = value;
    });
  const setAttr = (name: string, attr: string, value: string) => (xml: string) =>
    mutate(xml, (doc) => el(doc, name).setAttribute(attr, value));

  const cases: [string, string, () => Promise<[string, string]>][] = [
    ['tampered after signing', 'SAML_SIGNATURE', () => craft((x) => x.replace('alice@lab.example', 'mallory@lab.example'), { resign: false })],
    ['unsigned', 'SAML_UNSIGNED', () => craft(stripSignatures, { resign: false })],
    ['signed by another key', 'SAML_SIGNATURE', () => craft((x) => resign(x, other.keyPem, other.certPem), { resign: false })],
    ['wrong Issuer', 'SAML_ISSUER', () => craft((x) => x.replaceAll(r.sp.idp.idpEntityId, 'http://evil.example/idp'))],
    ['wrong Destination', 'SAML_DESTINATION', () => craft(setAttr('Response', 'Destination', 'http://login.other.test/sfc_sso'))],
    ['wrong Recipient', 'SAML_RECIPIENT', () => craft(setAttr('SubjectConfirmationData', 'Recipient', 'http://login.other.test/sfc_sso'))],
    ['wrong Audience', 'SAML_AUDIENCE', () => craft(setText('Audience', 'https://login.other.test/sfc_sso'))],
    [
      'a second AudienceRestriction naming only another SP',
      'SAML_AUDIENCE',
      () => craft((x) => x.replace('</saml:AudienceRestriction>', '</saml:AudienceRestriction><saml:AudienceRestriction><saml:Audience>https://login.other.test/sfc_sso</saml:Audience></saml:AudienceRestriction>')),
    ],
    ['bearer NotBefore in the future', 'SAML_NOT_YET_VALID', () => craft(setAttr('SubjectConfirmationData', 'NotBefore', new Date(Date.now() + 10 * 60_000).toISOString()))],
    ['Assertion without IssueInstant', 'SAML_MALFORMED', () => craft((x) => mutate(x, (doc) => el(doc, 'Assertion').removeAttribute('IssueInstant')))],
    [
      'failed Status with a signed assertion',
      'SAML_STATUS',
      () => craft(setAttr('StatusCode', 'Value', 'urn:oasis:names:tc:SAML:2.0:status:Responder')),
    ],
    ['unknown InResponseTo', 'SAML_IN_RESPONSE_TO', () => craft((x) => x.replaceAll(/InResponseTo="[^"]*"/g, 'InResponseTo="_0123456789abcdef"'))],
    [
      'assertion answering another request than the Response',
      'SAML_IN_RESPONSE_TO',
      () => craft(setAttr('SubjectConfirmationData', 'InResponseTo', '_0123456789abcdef')),
    ],
    ['DOCTYPE with an external entity', 'SAML_DOCTYPE', () => craft(withDoctype, { resign: false })],
    ['not XML', 'SAML_MALFORMED', async () => [encode('<samlp:Response'), 'x']],
    ['a CDATA section after the Response', 'SAML_MALFORMED', () => craft((x) => `${x}<![CDATA[x]]>`, { resign: false })],
    ['an AuthnRequest instead of a Response', 'SAML_MALFORMED', async () => [encode('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a"/>'), 'x']],
    ['not base64', 'SAML_MALFORMED', async () => ['%%%', 'x']],
  ];
  for (const [name, code, make] of cases) {
    const [b64, relay] = await make();
    await refused(t, r.sp.validate(b64, relay), code, name);
  }
  // After all that, a genuine response still works: refusals did not consume anything they should not.
  const post = await r.login();
  t.ok(await r.sp.validate(post.samlResponse, post.relayState));
});

t.test('a RelayState other than the one the request was sent with is refused', async (t) => {
  const r = await rig(t);
  const post = await r.login();
  await refused(t, r.sp.validate(post.samlResponse, 'relay-other'), 'SAML_RELAY_STATE', 'swapped RelayState');
});

t.test('an expired assertion is refused', async (t) => {
  const r = await rig(t, { idp: { clockOffsetMs: -20 * 60_000 } });
  const post = await r.login();
  await refused(t, r.sp.validate(post.samlResponse, post.relayState), 'SAML_EXPIRED', 'IdP clock 20 min behind');
});

t.test('an assertion that is not yet valid is refused', async (t) => {
  const r = await rig(t, { idp: { clockOffsetMs: 10 * 60_000 } });
  const post = await r.login();
  await refused(t, r.sp.validate(post.samlResponse, post.relayState), 'SAML_NOT_YET_VALID', 'IdP clock 10 min ahead');
});

t.test('clock skew within the configured window is accepted', async (t) => {
  const r = await rig(t, { idp: { clockOffsetMs: 30_000 } });
  const post = await r.login();
  t.ok(await r.sp.validate(post.samlResponse, post.relayState), '30 s ahead, 60 s skew allowed');
});

t.test('signature wrapping is refused', async (t) => {
  // Only the assertion is signed here, so the wrapping is not caught by a Response signature.
  const r = await rig(t, { idp: { signResponse: false }, sp: { wantResponseSigned: false } });
  const variants: [string, (x: string) => string][] = [
    ['evil assertion before the signed one', (x) => xswSiblingAssertion(x, 'mallory@lab.example')],
    ['original hidden in the signature of an evil assertion', (x) => xswWrappedOriginal(x, 'mallory@lab.example')],
    ['evil assertion with the same ID', (x) => xswSameId(x, 'mallory@lab.example')],
  ];
  for (const [name, fn] of variants) {
    const post = await r.login();
    await refused(t, r.sp.validate(encode(fn(post.xml)), post.relayState), 'SAML_SIGNATURE', name);
  }
  const both = await rig(t);
  const post = await both.login();
  await refused(t, both.sp.validate(encode(xswWrappedResponse(post.xml, 'mallory@lab.example')), post.relayState), 'SAML_SIGNATURE', 'evil Response around the signed one');
});

t.test('a Signature that verifiers read differently is refused, though its bytes verify', async (t) => {
  // Each change is outside what the Response digest covers (its own Signature) or leaves the
  // canonical bytes as they were, so the RSA and digest checks alone would pass. xml-crypto reads
  // such a signature otherwise (a value up to its first comment, Transforms counted in KeyInfo).
  const r = await rig(t);
  const inResponseSignature = (fn: (sig: string) => string) => (xml: string): string => {
    const start = xml.indexOf('<ds:Signature');
    const end = xml.indexOf('</ds:Signature>', start) + '</ds:Signature>'.length;
    return xml.slice(0, start) + fn(xml.slice(start, end)) + xml.slice(end);
  };
  const variants: [string, (x: string) => string][] = [
    ['a comment inside the DigestValue', inResponseSignature((s) => s.replace(/(<ds:DigestValue>[^<]{4})/, '$1<!-- -->'))],
    ['a comment inside the SignatureValue', inResponseSignature((s) => s.replace(/(<ds:SignatureValue>[^<]{4})/, '$1<!-- -->'))],
    ['a CDATA section as the SignatureValue', inResponseSignature((s) => s.replace(/<ds:SignatureValue>([^<]*)</, '<ds:SignatureValue><![CDATA[$1]]><'))],
    ['a processing instruction in the KeyInfo', inResponseSignature((s) => s.replace('<ds:KeyInfo>', '<ds:KeyInfo><?x y?>'))],
    ['Transforms inside the KeyInfo', inResponseSignature((s) => s.replace('<ds:KeyInfo>', '<ds:KeyInfo><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms>'))],
    ['an empty Signature inside the KeyInfo', inResponseSignature((s) => s.replace('<ds:KeyInfo>', '<ds:KeyInfo><ds:Signature/>'))],
  ];
  for (const [name, fn] of variants) {
    const post = await r.login();
    const xml = fn(post.xml);
    t.not(xml, post.xml, `${name}: changed`);
    await refused(t, r.sp.validate(encode(xml), post.relayState), 'SAML_SIGNATURE', name);
  }
});

t.test('a response signed on the Response only is read from the signed Response when assertions need no signature', async (t) => {
  const r = await rig(t, { idp: { signAssertion: false }, sp: { wantAssertionsSigned: false } });
  const post = await r.login();
  t.notMatch(post.xml, /<saml:Assertion[^>]*>.*<ds:Signature/, 'the Assertion carries no signature');
  t.equal((await r.sp.validate(post.samlResponse, post.relayState)).loginName, 'alice@lab.example');
});

t.test('NameID and attribute values are read exactly as signed, white space included', async (t) => {
  // Signed again by the IdP's own key: white space around a value is part of what it signed, and
  // trimming it would let a padded name sign in as the unpadded one.
  const r = await rig(t);
  const post = await r.login();
  const padded = post.xml.replace('>alice@lab.example<', '> alice@lab.example\n<').replace('>Engineering<', '>Engineering <');
  const xml = resign(padded, signing.keyPem, signing.certPem);
  const id = await r.sp.validate(encode(xml), post.relayState);
  t.equal(id.loginName, ' alice@lab.example\n', 'the NameID as signed');
  t.equal(id.department, 'Engineering ', 'the attribute value as signed');
  const again = await r.login();
  const issuer = resign(again.xml.replace(`<saml:Issuer>${r.sp.idp.idpEntityId}</saml:Issuer>`, `<saml:Issuer> ${r.sp.idp.idpEntityId}</saml:Issuer>`), signing.keyPem, signing.certPem);
  await refused(t, r.sp.validate(encode(issuer), again.relayState), 'SAML_ISSUER', 'an Issuer with white space around it');
});

t.test('signed shapes that readers read two ways are refused or left out', async (t) => {
  // Signed by the IdP's own key: only how the signed XML is read can tell.
  const r = await rig(t);
  const statement = '</saml:AttributeStatement>';
  const refusals: [string, (x: string) => string][] = [
    ['a NameID holding an element', (x) => x.replace('alice@lab.example</saml:NameID>', 'alice@lab.example<x:More xmlns:x="urn:example:more">.evil</x:More></saml:NameID>')],
    ['an Audience holding an element', (x) => x.replace('</saml:Audience>', '<x:More xmlns:x="urn:example:more"/></saml:Audience>')],
    ['an Attribute named twice', (x) => x.replace(statement, `<saml:Attribute Name="memberOf"><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute>${statement}`)],
  ];
  for (const [name, fn] of refusals) {
    const post = await r.login();
    await refused(t, r.sp.validate(encode(resign(fn(post.xml), signing.keyPem, signing.certPem)), post.relayState), 'SAML_MALFORMED', name);
  }
  const post = await r.login();
  const complex = post.xml.replace('<saml:AttributeValue xsi:type="xs:string">eng</saml:AttributeValue>', '<saml:AttributeValue><x:Group xmlns:x="urn:example:group">admins</x:Group></saml:AttributeValue>');
  t.not(complex, post.xml);
  const id = await r.sp.validate(encode(resign(complex, signing.keyPem, signing.certPem)), post.relayState);
  t.same(id.groups, ['vpn-users'], 'a group value holding an element is no group');
});

t.test('only signed bytes are read: a comment added inside the NameID after signing changes nothing', async (t) => {
  // Canonical XML leaves comments out, so the signatures still hold; a reader that stops at the
  // comment would see another user (the 2018 comment-truncation bugs in several SAML libraries).
  const r = await rig(t);
  const post = await r.login();
  const xml = post.xml.replace('alice@lab.example</saml:NameID>', 'alice@lab<!-- -->.example</saml:NameID>');
  t.not(xml, post.xml);
  t.equal((await r.sp.validate(encode(xml), post.relayState)).loginName, 'alice@lab.example');
});

t.test('signature algorithms: SHA-256 or better, one Reference, exclusive c14n without comments', async (t) => {
  const r = await rig(t);
  const resignAs = (xml: string, assertion: SignAs, response: SignAs = assertion): string => resignWith(xml, signing.keyPem, signing.certPem, assertion, response);
  const cases: [string, string | null, (xml: string) => string][] = [
    ['as the lab IdP signs, again', null, (x) => resignAs(x, {})],
    ['RSA-SHA512 with SHA-512 digests', null, (x) => resignAs(x, { signature: ALG.rsaSha512, digest: ALG.sha512 })],
    // samlp is bound on the Response only, so the Assertion's digest must carry its declaration.
    ['an InclusiveNamespaces prefix bound on the Response', null, (x) => resignAs(x, { prefixes: ['samlp', 'xs'] }, {})],
    ['RSA-SHA1 on the Assertion', 'SAML_SIGNATURE', (x) => resignAs(x, { signature: ALG.rsaSha1 }, {})],
    ['RSA-SHA1 on the Response', 'SAML_SIGNATURE', (x) => resignAs(x, {}, { signature: ALG.rsaSha1 })],
    ['SHA-1 digest', 'SAML_SIGNATURE', (x) => resignAs(x, { digest: ALG.sha1 })],
    // Inclusive c14n of the Assertion draws in the Response's namespaces, which verifiers read differently.
    ['inclusive c14n', 'SAML_SIGNATURE', (x) => resignAs(x, { c14n: ALG.c14n })],
    ['inclusive c14n on the Response only', 'SAML_SIGNATURE', (x) => resignAs(x, {}, { c14n: ALG.c14n })],
    ['c14n with comments', 'SAML_SIGNATURE', (x) => resignAs(x, { c14n: ALG.excC14nComments })],
    ['a second Reference', 'SAML_SIGNATURE', (x) => resignAs(x, {}, { alsoReference: ASSERTION_XPATH })],
  ];
  for (const [name, code, fn] of cases) {
    const post = await r.login();
    const p = r.sp.validate(encode(fn(post.xml)), post.relayState);
    if (code === null) t.equal((await p).loginName, 'alice@lab.example', `${name}: accepted`);
    else await refused(t, p, code, name);
  }
});

t.test('an ID that another element of the response also carries is refused', async (t) => {
  const r = await rig(t);
  const post = await r.login();
  const id = /<saml:Assertion [^>]*ID="([^"]+)"/.exec(post.xml)![1]!;
  // Signed again by the IdP's own key, so only the ID check can tell.
  const decoy = `<samlp:Extensions><x:Decoy xmlns:x="urn:example:decoy" Id="${id}"/></samlp:Extensions>`;
  const xml = resign(post.xml.replace(/(<\/saml:Issuer>)/, `$1${decoy}`), signing.keyPem, signing.certPem);
  await refused(t, r.sp.validate(encode(xml), post.relayState), 'SAML_SIGNATURE', 'Id shared with a decoy element');
});

t.test('the IdP certificate may be configured as bare base64', async (t) => {
  const r = await rig(t);
  const bare = r.sp.idp.idpCertPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const sp = new SamlSp({ idp: withIdpDefaults({ ...r.sp.idp, idpCertPem: bare }), cloud, orgId, store: r.store });
  const { url } = await sp.authorizeUrl('relay-bare');
  const post = await labLogin(url, users[0]!.loginName, users[0]!.password);
  t.equal((await sp.validate(post.samlResponse, post.relayState)).loginName, 'alice@lab.example');
});

t.test('a response is accepted once (sequential replay)', async (t) => {
  const r = await rig(t);
  const post = await r.login();
  await r.sp.validate(post.samlResponse, post.relayState);
  await refused(t, r.sp.validate(post.samlResponse, post.relayState), 'SAML_REPLAY', 'second post');
});

/** concurrentReplay posts one response n times at once and counts successes and codes. */
async function concurrentReplay(t: Test, sps: SamlSp[], r: Rig, n: number): Promise<void> {
  const post = await r.login();
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => sps[i % sps.length]!.validate(post.samlResponse, post.relayState)));
  const ok = results.filter((x) => x.status === 'fulfilled');
  const codes = new Set(results.flatMap((x) => (x.status === 'rejected' ? [(x.reason as SamlError).code] : [])));
  t.equal(ok.length, 1, `exactly one of ${n} parallel posts succeeds`);
  t.same([...codes], ['SAML_REPLAY'], 'the others are refused as replays');
}

t.test('a response posted 20 times at once is accepted once (embedded store)', async (t) => {
  const r = await rig(t);
  await concurrentReplay(t, [r.sp], r, 20);
});

t.test('a response posted 20 times at once to two nodes sharing Redis is accepted once', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cfg = { type: 'redis', url: redis.url, keyPrefix: 'tg-test:', commandTimeoutMs: 2_000 } as const;
  const a = await openStore(cfg);
  const b = await openStore(cfg);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const r = await rig(t, { store: a });
  // Node B is another SamlSp for the same IdP on its own store connection: a login started on A finishes on B.
  const nodeB = new SamlSp({ idp: r.sp.idp, cloud, orgId, store: b });
  const started = await r.login();
  t.equal((await nodeB.validate(started.samlResponse, started.relayState)).loginName, 'alice@lab.example', 'started on A, finished on B');
  await concurrentReplay(t, [r.sp, nodeB], r, 20);
});

t.test('decode helpers round-trip', async (t) => {
  t.equal(decode(encode('<a/>')), '<a/>');
});
