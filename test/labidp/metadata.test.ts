import t from 'tap';
import * as samlify from 'samlify';
import { makeSigningPair, startLabIdp } from '../../src/labidp/idp.js';
import { labIdpMetadataXml } from '../../src/labidp/metadata.js';
import { parse } from '../helpers/saml.js';

const pair = makeSigningPair();
const { certPem } = pair;
const NS_MD = 'urn:oasis:names:tc:SAML:2.0:metadata';

t.test('samlify reads the entity ID, SSO endpoint and signing certificate from the metadata', async (t) => {
  const entityId = 'http://idp.lab.example/metadata?a=1&b=2';
  const idp = samlify.IdentityProvider({ metadata: labIdpMetadataXml({ entityId, ssoUrl: 'http://idp.lab.example/sso', certPem }) });
  t.equal(idp.entityMeta.getEntityID(), entityId, 'an & in the entity ID survives escaping');
  t.equal(idp.entityMeta.getSingleSignOnService('redirect'), 'http://idp.lab.example/sso');
  t.equal(idp.entityMeta.getX509Certificate('signing'), certPem.replace(/-----[A-Z ]+-----|\s/g, ''));
  t.equal(idp.entityMeta.isWantAuthnRequestsSigned(), false, 'AuthnRequests need not be signed, as with Okta');
});

t.test('the IdP starts without samlify warnings and serves its metadata without SLO', async (t) => {
  const warned: unknown[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => void warned.push(a);
  t.teardown(() => void (console.warn = warn));
  const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users: [], spEntityId: 'https://login.lab.test/sfc_sso', acsUrl: 'http://login.lab.test/sfc_sso', ...pair });
  t.teardown(() => idp.close());
  console.warn = warn;
  t.same(warned, [], 'nothing on the console');
  const res = await fetch(idp.entityId);
  t.equal(res.status, 200);
  const doc = parse(await res.text());
  t.equal(doc.documentElement.getAttribute('entityID'), idp.entityId);
  t.equal(doc.getElementsByTagNameNS(NS_MD, 'SingleSignOnService')[0]?.getAttribute('Location'), idp.ssoUrl);
  t.equal(doc.getElementsByTagNameNS(NS_MD, 'SingleLogoutService').length, 0, 'no logout is offered');
  t.throws(() => labIdpMetadataXml({ entityId: 'x', ssoUrl: 'y', certPem: 'nope' }), /not a PEM certificate/);
});
