import t, { type Test } from 'tap';
import { DOMParser } from '@xmldom/xmldom';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { SamlSp, spEntityId, withIdpDefaults } from '../../src/auth/saml.js';
import { makeSigningPair } from '../../src/labidp/idp.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const idpCert = makeSigningPair('idp');

function sp(t: Test, extra: Record<string, unknown> = {}, acsUrl?: string): SamlSp {
  const store = new EmbeddedStore({ path: t.testdir() });
  t.teardown(() => store.close());
  const idp = withIdpDefaults({
    id: 'okta', name: 'Okta', ssoUrl: 'https://lab.okta.example/app/sso/saml', idpCertPem: idpCert.certPem,
    idpEntityId: 'http://www.okta.com/exk1', ...extra,
  });
  return new SamlSp({ idp, cloud: 'zscalertwo.test', orgId: '4242', store, ...(acsUrl ? { acsUrl } : {}) });
}

function md(xml: string): Element {
  return new DOMParser().parseFromString(xml, 'text/xml').documentElement;
}

t.test('spEntityId is shared or org-specific', async (t) => {
  t.equal(spEntityId('zscalertwo.test', '4242', false), 'https://login.zscalertwo.test/sfc_sso');
  t.equal(spEntityId('zscalertwo.test', '4242', true), 'https://login.zscalertwo.test/sfc_sso/4242');
});

t.test('metadata names the entity ID, the ACS URL and the emailAddress NameID format, unsigned requests', async (t) => {
  const s = sp(t);
  const root = md(s.spMetadataXml());
  t.equal(root.localName, 'EntityDescriptor');
  t.equal(root.getAttribute('entityID'), 'https://login.zscalertwo.test/sfc_sso');
  const desc = root.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!;
  t.equal(desc.getAttribute('AuthnRequestsSigned'), 'false');
  t.equal(desc.getAttribute('WantAssertionsSigned'), 'true');
  const acs = root.getElementsByTagNameNS(MD, 'AssertionConsumerService')[0]!;
  t.equal(acs.getAttribute('Location'), 'http://login.zscalertwo.test/sfc_sso');
  t.equal(acs.getAttribute('Binding'), 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
  t.equal(root.getElementsByTagNameNS(MD, 'NameIDFormat')[0]?.textContent, 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress');
  t.equal(root.getElementsByTagNameNS(MD, 'KeyDescriptor').length, 0, 'no signing cert when requests are not signed');
});

t.test('with Sign SAML Request on, metadata carries the SP signing cert and requests are signed', async (t) => {
  const spKey = makeSigningPair('sp');
  const s = sp(t, { orgSpecificEntityId: true, signRequest: true, spKeyPem: spKey.keyPem, spCertPem: spKey.certPem });
  const root = md(s.spMetadataXml());
  t.equal(root.getAttribute('entityID'), 'https://login.zscalertwo.test/sfc_sso/4242');
  t.equal(root.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!.getAttribute('AuthnRequestsSigned'), 'true');
  const kd = root.getElementsByTagNameNS(MD, 'KeyDescriptor')[0]!;
  t.equal(kd.getAttribute('use'), 'signing');
  const body = spKey.certPem.replace(/-----[^-]+-----|\s/g, '');
  t.equal(kd.textContent?.replace(/\s/g, ''), body);
  const { url } = await s.authorizeUrl('r1');
  const q = new URL(url).searchParams;
  t.equal(q.get('SigAlg'), 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
  t.ok(q.get('Signature'));
});

t.test('signRequest without a key is a build error', async (t) => {
  t.throws(() => sp(t, { signRequest: true }), /signRequest needs spKeyPem and spCertPem/);
});

t.test('authorizeUrl uses the HTTP-Redirect binding and stores the request ID', async (t) => {
  const s = sp(t, {}, 'http://127.0.0.1:9/sfc_sso');
  const { url, requestId } = await s.authorizeUrl('relay-xyz');
  const u = new URL(url);
  t.equal(u.origin + u.pathname, 'https://lab.okta.example/app/sso/saml');
  t.equal(u.searchParams.get('RelayState'), 'relay-xyz');
  t.ok(u.searchParams.get('SAMLRequest'));
  t.match(requestId, /^_[0-9a-f]+$/);
  t.equal(s.acsUrl, 'http://127.0.0.1:9/sfc_sso');
});
