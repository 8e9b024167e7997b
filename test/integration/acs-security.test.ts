/**
 * Hostile posts to the ACS itself (POST http://login.<cloud>/sfc_sso through the proxy): each crafted
 * response is refused with its stable code, no session, no cookie and no redirect; a genuine
 * response is accepted once, even when posted 20 times at the same instant.
 */
import t from 'tap';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { decode, el, encode, mutate, resign, stripSignatures, withDoctype, xswSameId, xswSiblingAssertion, xswWrappedOriginal, xswWrappedResponse } from '../helpers/saml.js';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { COOKIE_NAME } from '../../src/auth/identify.js';

const ACS = 'http://login.tollgate.test/sfc_sso';

t.test('crafted responses posted to the ACS are refused; a genuine one is accepted once', async (t) => {
  const lab = await startLabIdpFixture();
  const tg = await startTestTollgate((dir) =>
    testConfig(dir, {
      locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true }],
      hosts: { 'www.site.test': '127.0.0.1' },
      idps: [lab.config()],
    }),
  );
  t.teardown(async () => {
    await tg.close();
    await lab.close();
  });
  const other = makeSigningPair('Someone else');
  const browser = new FlowClient(tg.proxyPort, '127.0.0.20');
  const fresh = () => browser.obtainResponse('http://www.site.test:9/page', 'alice@example.com', 'alice-pw');
  const post = (samlResponse: string, relayState: string) => browser.request(ACS, { form: { SAMLResponse: samlResponse, RelayState: relayState } });
  const setAttr = (name: string, attr: string, value: string) => (xml: string) => mutate(xml, (doc) => el(doc, name).setAttribute(attr, value));
  const setText = (name: string, value: string) => (xml: string) => mutate(xml, (doc) => void (el(doc, name).textContent = value));
  const again = (fn: (xml: string) => string) => (xml: string) => resign(fn(xml), lab.keyPem, lab.certPem);
  const shiftTimes = (ms: number) => (xml: string) =>
    xml.replace(/(NotBefore|NotOnOrAfter|IssueInstant|AuthnInstant)="([^"]+)"/g, (_, k: string, v: string) => `${k}="${new Date(Date.parse(v) + ms).toISOString()}"`);

  const cases: [string, string, (xml: string) => string][] = [
    ['tampered after signing', 'SAML_SIGNATURE', (x) => x.replace('alice@example.com', 'mallory@example.com')],
    ['unsigned', 'SAML_UNSIGNED', stripSignatures],
    ['signed by another key', 'SAML_SIGNATURE', (x) => resign(x, other.keyPem, other.certPem)],
    ['wrong Issuer', 'SAML_ISSUER', again((x) => x.replaceAll(lab.idp.entityId, 'http://evil.example/idp'))],
    ['wrong Destination', 'SAML_DESTINATION', again(setAttr('Response', 'Destination', 'http://login.other.test/sfc_sso'))],
    ['wrong Recipient', 'SAML_RECIPIENT', again(setAttr('SubjectConfirmationData', 'Recipient', 'http://login.other.test/sfc_sso'))],
    ['wrong Audience', 'SAML_AUDIENCE', again(setText('Audience', 'https://login.other.test/sfc_sso'))],
    ['failed Status with a signed assertion', 'SAML_STATUS', again(setAttr('StatusCode', 'Value', 'urn:oasis:names:tc:SAML:2.0:status:Responder'))],
    ['expired', 'SAML_EXPIRED', again(shiftTimes(-3600_000))],
    ['not yet valid', 'SAML_NOT_YET_VALID', again(shiftTimes(3600_000))],
    ['unknown InResponseTo', 'SAML_IN_RESPONSE_TO', again((x) => x.replaceAll(/InResponseTo="[^"]*"/g, 'InResponseTo="_0123456789abcdef"'))],
    ['XSW: unsigned sibling assertion', 'SAML_', (x) => xswSiblingAssertion(x, 'mallory@example.com')],
    ['XSW: original hidden in the signature', 'SAML_', (x) => xswWrappedOriginal(x, 'mallory@example.com')],
    ['XSW: evil assertion with the same ID', 'SAML_', (x) => xswSameId(x, 'mallory@example.com')],
    ['XSW: wrapped Response', 'SAML_', (x) => xswWrappedResponse(x, 'mallory@example.com')],
    ['DOCTYPE with an external entity', 'SAML_DOCTYPE', withDoctype],
  ];
  for (const [name, code, craft] of cases) {
    const got = await fresh();
    const r = await post(encode(craft(decode(got.samlResponse))), got.relayState);
    t.ok(r.status === 403 || r.status === 400, `${name}: refused (${r.status})`);
    t.ok(String(r.headers['x-tollgate-error']).startsWith(code), `${name}: code ${r.headers['x-tollgate-error']}`);
    t.equal(r.headers.location, undefined, `${name}: no redirect`);
    t.equal(r.headers['set-cookie'], undefined, `${name}: no cookie`);
    t.notOk(r.body.includes('mallory'), `${name}: the page names no identity`);
    t.notMatch(r.body, /at .*\.(ts|js):\d+/, `${name}: no stack trace`);
  }
  t.notOk(browser.cookie('gateway.tollgate.test', COOKIE_NAME), 'no refused response produced a session');
  t.match(JSON.stringify(tg.app.lines), /sign-in refused/, 'the log has the precise reasons');

  // Sequential replay: the genuine response works once.
  const genuine = await fresh();
  const firstPost = await post(genuine.samlResponse, genuine.relayState);
  t.equal(firstPost.status, 303, 'a genuine response is accepted');
  const replay = await post(genuine.samlResponse, genuine.relayState);
  t.equal(replay.status, 403, 'and refused when posted again');
  t.ok(['SAML_REPLAY', 'SAML_IN_RESPONSE_TO'].includes(String(replay.headers['x-tollgate-error'])), `replay code ${replay.headers['x-tollgate-error']}`);

  // Concurrent replay: 20 posts of one response at the same instant, exactly one succeeds.
  const one = await fresh();
  const results = await Promise.all(Array.from({ length: 20 }, () => post(one.samlResponse, one.relayState)));
  t.equal(results.filter((r) => r.status === 303).length, 1, '20 parallel posts: exactly one accepted');
  t.equal(results.filter((r) => r.status === 403).length, 19, 'the other 19 refused');
});
