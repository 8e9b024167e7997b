/**
 * certificate: reading an IdP signing certificate at activation, with Node's crypto (OpenSSL).
 *
 * A file that is not a PEM certificate, or a certificate that is expired or not yet valid, is an
 * activation error; one that expires within 30 days is accepted with a warning, so an admin can
 * roll the Okta certificate before logins start failing.
 */
import { X509Certificate } from 'node:crypto';

/** EXPIRY_WARNING_MS is how close to expiry a certificate draws a warning. */
export const EXPIRY_WARNING_MS = 30 * 24 * 60 * 60 * 1000;

/** IdpCertificate is a parsed IdP certificate. */
export interface IdpCertificate {
  /** pem is the certificate alone, re-encoded (text around the PEM block dropped). */
  readonly pem: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** fingerprintSha256 is the colon-separated SHA-256 of the DER, as Okta shows it. */
  readonly fingerprintSha256: string;
  /** warning is set when the certificate expires within EXPIRY_WARNING_MS. */
  readonly warning: string | null;
}

/** IdpCertificateError is why a certificate cannot be used; `code` is stable. */
export class IdpCertificateError extends Error {
  constructor(
    readonly code: 'IDP_CERT_NOT_PEM' | 'IDP_CERT_UNREADABLE' | 'IDP_CERT_EXPIRED' | 'IDP_CERT_NOT_YET_VALID',
    message: string,
  ) {
    super(message);
    this.name = 'IdpCertificateError';
  }
}

/**
 * parseIdpCertificates parses and checks every certificate in a PEM file: an IdP rolling its signing
 * key (Okta's rollover) publishes the old and the new one, and a response signed by either is valid.
 */
export function parseIdpCertificates(pem: string, now: Date = new Date(), label = 'IdP certificate'): IdpCertificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [pem];
  return blocks.map((b, i) => parseIdpCertificate(b, now, blocks.length > 1 ? `${label} ${i + 1} of ${blocks.length}` : label));
}

/** parseIdpCertificate parses and checks one PEM certificate at time `now`. `label` names it in messages. */
export function parseIdpCertificate(pem: string, now: Date = new Date(), label = 'IdP certificate'): IdpCertificate {
  const block = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (block === undefined) {
    throw new IdpCertificateError('IDP_CERT_NOT_PEM', `${label} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(block);
  } catch (err) {
    throw new IdpCertificateError('IDP_CERT_UNREADABLE', `${label} could not be read: ${(err as Error).message}`);
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const subject = cert.subject.split('\n').join(', ');
  if (now.getTime() >= notAfter.getTime()) {
    throw new IdpCertificateError('IDP_CERT_EXPIRED', `${label} (${subject}) expired on ${notAfter.toISOString()}`);
  }
  if (now.getTime() < notBefore.getTime()) {
    throw new IdpCertificateError('IDP_CERT_NOT_YET_VALID', `${label} (${subject}) is not valid before ${notBefore.toISOString()}`);
  }
  const left = notAfter.getTime() - now.getTime();
  const warning =
    left <= EXPIRY_WARNING_MS
      ? `${label} (${subject}) expires on ${notAfter.toISOString()}, in ${Math.ceil(left / 86_400_000)} day(s); roll it in the IdP and here`
      : null;
  return {
    pem: cert.toString(),
    subject,
    notBefore,
    notAfter,
    fingerprintSha256: cert.fingerprint256,
    warning,
  };
}
