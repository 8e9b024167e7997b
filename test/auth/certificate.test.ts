import t from 'tap';
import { IdpCertificateError, parseIdpCertificate } from '../../src/auth/certificate.js';
import { makeSigningPair } from '../../src/labidp/idp.js';

const day = 86_400_000;

t.test('a valid PEM certificate is read, with subject, dates and fingerprint', async (t) => {
  const { certPem } = makeSigningPair('okta-lab');
  const c = parseIdpCertificate(`Okta signing cert\n${certPem}`);
  t.equal(c.subject, 'CN=okta-lab');
  t.equal(c.warning, null);
  t.match(c.fingerprintSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.match(c.pem, /^-----BEGIN CERTIFICATE-----/);
});

t.test('what is not a PEM certificate is refused, saying so', async (t) => {
  const cases: [string, string, string][] = [
    ['plain text', 'hello', 'IDP_CERT_NOT_PEM'],
    ['a private key', makeSigningPair().keyPem, 'IDP_CERT_NOT_PEM'],
    ['damaged base64', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'IDP_CERT_UNREADABLE'],
  ];
  for (const [name, pem, code] of cases) {
    t.throws(() => parseIdpCertificate(pem, new Date(), 'certs/okta.pem'), { name: 'IdpCertificateError', code }, name);
  }
  try {
    parseIdpCertificate('hello', new Date(), 'certs/okta.pem');
  } catch (err) {
    t.match((err as IdpCertificateError).message, /certs\/okta\.pem is not a PEM certificate/);
  }
});

t.test('an expired certificate is refused', async (t) => {
  const { certPem } = makeSigningPair('old', new Date(Date.now() + day));
  t.throws(() => parseIdpCertificate(certPem, new Date(Date.now() + 2 * day)), { code: 'IDP_CERT_EXPIRED', message: /expired on/ });
});

t.test('a certificate not valid yet is refused', async (t) => {
  const { certPem } = makeSigningPair();
  t.throws(() => parseIdpCertificate(certPem, new Date(Date.now() - day)), { code: 'IDP_CERT_NOT_YET_VALID' });
});

t.test('a certificate expiring within 30 days draws a warning', async (t) => {
  const { certPem } = makeSigningPair('soon', new Date(Date.now() + 10 * day));
  const c = parseIdpCertificate(certPem);
  t.match(c.warning, /expires on .* in 10 day\(s\)/);
  const later = makeSigningPair('later', new Date(Date.now() + 31 * day));
  t.equal(parseIdpCertificate(later.certPem).warning, null, '31 days before expiry: no warning');
});
