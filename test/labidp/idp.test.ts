import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignedXml } from 'xml-crypto';
import { DOMParser } from '@xmldom/xmldom';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { LAB_IDP_BANNER, startLabIdp } from '../../src/labidp/idp.js';
import { loadLabUsers, parseLabUsers, type LabUser } from '../../src/labidp/users.js';
import { decode, htmlField, labLogin } from '../helpers/saml.js';

const users: LabUser[] = [
  { loginName: 'dave@lab.example', password: 'dave-pw', displayName: 'Dave', department: 'Ops', groups: ['ops', 'admins'] },
];
const spEntityId = 'https://login.lab.test/sfc_sso';
const acsUrl = 'http://login.lab.test/sfc_sso';

/** authnRequestUrl builds a real HTTP-Redirect AuthnRequest to the IdP with node-saml. */
async function authnRequestUrl(ssoUrl: string, certPem: string, relay = 'r1'): Promise<string> {
  const saml = new SAML({
    callbackUrl: acsUrl, entryPoint: ssoUrl, issuer: spEntityId, idpCert: certPem,
    validateInResponseTo: ValidateInResponseTo.never,
  });
  return saml.getAuthorizeUrlAsync(relay, undefined, {});
}

t.test('the SSO endpoint shows a login form labelled not for production', async (t) => {
  const lines: string[] = [];
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId, acsUrl, log: (l) => lines.push(l) });
  t.teardown(() => idp.close());
  const res = await fetch(await authnRequestUrl(idp.ssoUrl, idp.certPem));
  t.equal(res.status, 200);
  t.equal(res.headers.get('x-frame-options'), 'DENY');
  const html = await res.text();
  t.match(html, LAB_IDP_BANNER);
  t.match(html, /<form method="post" action="\/login">/);
  t.ok(htmlField(html, 'pending'), 'a single-use pending id in the form');
  t.match(lines.join('\n'), /NOT FOR PRODUCTION: SSO URL http:\/\/127\.0\.0\.1:\d+\/sso/);
});

t.test('requests that are not an AuthnRequest for our SP are refused', async (t) => {
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId, acsUrl });
  t.teardown(() => idp.close());
  t.equal((await fetch(`${idp.ssoUrl}?SAMLRequest=bm9wZQ%3D%3D`)).status, 400, 'garbage');
  t.equal((await fetch(idp.ssoUrl)).status, 400, 'no SAMLRequest');
});

t.test('a wrong password is refused and the form is shown again', async (t) => {
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId, acsUrl });
  t.teardown(() => idp.close());
  await t.rejects(labLogin(await authnRequestUrl(idp.ssoUrl, idp.certPem), 'dave@lab.example', 'wrong'), /answered 401/);
  await t.rejects(labLogin(await authnRequestUrl(idp.ssoUrl, idp.certPem), 'nobody@lab.example', 'dave-pw'), /answered 401/);
  const stale = await fetch(new URL('/login', idp.ssoUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'pending=forged&username=dave%40lab.example&password=dave-pw',
  });
  t.equal(stale.status, 400, 'a login without a pending id from our form is refused (CSRF)');
});

t.test('the signed response verifies with the printed certificate', async (t) => {
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId, acsUrl });
  t.teardown(() => idp.close());
  const post = await labLogin(await authnRequestUrl(idp.ssoUrl, idp.certPem, 'relay-9'), 'DAVE@lab.example', 'dave-pw');
  t.equal(post.acsUrl, acsUrl);
  t.equal(post.relayState, 'relay-9');
  const xml = decode(post.samlResponse);
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const sigs = Array.from(doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature'));
  t.equal(sigs.length, 2, 'Response and Assertion are both signed');
  for (const s of sigs) {
    const v = new SignedXml({ publicCert: idp.certPem });
    v.loadSignature(s);
    t.ok(v.checkSignature(xml), `signature on ${(s.parentNode as Element).localName} verifies`);
  }
  t.match(xml, /Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">dave@lab.example</);
  t.match(xml, /<saml:Attribute Name="memberOf"[^>]*><saml:AttributeValue[^>]*>ops<\/saml:AttributeValue><saml:AttributeValue[^>]*>admins</);
  t.match(xml, /Destination="http:\/\/login\.lab\.test\/sfc_sso"/);
  t.match(xml, /<saml:Audience>https:\/\/login\.lab\.test\/sfc_sso<\/saml:Audience>/);
  // node-saml, configured as the lab's SP would be, accepts it too.
  const sp = new SAML({
    callbackUrl: acsUrl, issuer: spEntityId, audience: spEntityId, idpCert: idp.certPem, wantAssertionsSigned: true,
    wantAuthnResponseSigned: true, validateInResponseTo: ValidateInResponseTo.never,
  });
  const { profile } = await sp.validatePostResponseAsync({ SAMLResponse: post.samlResponse });
  t.equal(profile?.nameID, 'dave@lab.example');
});

t.test('the pending login is single-use', async (t) => {
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId, acsUrl });
  t.teardown(() => idp.close());
  const html = await (await fetch(await authnRequestUrl(idp.ssoUrl, idp.certPem))).text();
  const body = new URLSearchParams({ pending: htmlField(html, 'pending')!, username: 'dave@lab.example', password: 'dave-pw' }).toString();
  const post = (): Promise<Response> =>
    fetch(new URL('/login', idp.ssoUrl), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  t.equal((await post()).status, 200);
  t.equal((await post()).status, 400);
});

t.test('users load from JSON or YAML, and bad files say every problem', async (t) => {
  const dir = t.testdir({
    'users.yaml': 'users:\n  - loginName: e@lab.example\n    password: pw\n    displayName: E\n    groups: solo\n',
    'users.json': JSON.stringify([{ loginName: 'f@lab.example', password: 'pw', groups: ['a', 'b'] }]),
  });
  const yaml = await loadLabUsers(join(dir, 'users.yaml'));
  t.same(yaml[0]?.groups, ['solo'], 'one group may be a string');
  const json = await loadLabUsers(join(dir, 'users.json'));
  t.same(json[0], { loginName: 'f@lab.example', password: 'pw', displayName: '', department: '', groups: ['a', 'b'] });
  t.throws(() => parseLabUsers([{ loginName: 'nope', password: '' }], 'u.yaml'), /u\.yaml: 0\.loginName: must be an email address; 0\.password/);
  t.throws(() => parseLabUsers([{ loginName: 'a@x', password: 'p' }, { loginName: 'A@x', password: 'q' }]), /appears twice/);
  await writeFile(join(dir, 'bad.yaml'), '[');
  await t.rejects(loadLabUsers(join(dir, 'bad.yaml')));
});
