/**
 * keys: the lab IdP's signing key and certificate, kept on disk. NOT FOR PRODUCTION.
 *
 *   DIR/signing.key (PKCS#8 PEM, mode 0600)   DIR/signing.crt (self-signed, one year)
 *
 * An admin pastes the certificate into Tollgate (as into ZIA from Okta), so it must survive
 * restarts. It is replaced only when it cannot sign any more: missing, unreadable, key and
 * certificate not a pair, or within 30 days of expiry (EXPIRY_WARNING_MS, the same margin at which
 * Tollgate warns about any IdP certificate).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EXPIRY_WARNING_MS, IdpCertificateError, parseIdpCertificate } from '../auth/certificate.js';
import { readIfThere, writeAtomically } from '../files.js';
import { makeSigningPair } from './idp.js';

/** KEY_FILE and CERT_FILE are the names of the signing pair inside the keys folder. */
export const KEY_FILE = 'signing.key';
export const CERT_FILE = 'signing.crt';

/** CERT_LIFETIME_MS is how long a new lab signing certificate is valid: one year. */
const CERT_LIFETIME_MS = 365 * 86_400_000;

/** LabKeys is the signing pair on disk. */
export interface LabKeys {
  readonly keyPem: string;
  readonly certPem: string;
  readonly keyPath: string;
  readonly certPath: string;
  /** created is true when a new pair was written (first start, or the old one was unusable). */
  readonly created: boolean;
  /** replaced is true when the new pair took the place of an unusable one (not on a first start). */
  readonly replaced: boolean;
  /** reason says why a new pair was written; null when the pair on disk was kept. */
  readonly reason: string | null;
}

/**
 * ensureLabKeys returns the signing pair kept in dir (key file mode 0600, folder 0700), making a
 * new one when there is none or the one there is unusable at `now` (expired, within
 * EXPIRY_WARNING_MS of expiry, unreadable, or key and certificate not a pair).
 */
export async function ensureLabKeys(dir: string, now: Date = new Date()): Promise<LabKeys> {
  const keyPath = resolve(dir, KEY_FILE);
  const certPath = resolve(dir, CERT_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPem = await readIfThere(keyPath);
  const certPem = await readIfThere(certPath);
  const reason =
    keyPem === null || certPem === null
      ? `no signing key and certificate in ${resolve(dir)} yet`
      : unusable(keyPem, certPem, certPath, now);
  if (reason === null) {
    // A key copied in by hand may be readable by others; the IdP's key is a secret even in a lab.
    if (((await stat(keyPath)).mode & 0o077) !== 0) await chmod(keyPath, 0o600);
    return { keyPem: keyPem!, certPem: certPem!, keyPath, certPath, created: false, replaced: false, reason: null };
  }
  const pair = makeSigningPair(undefined, new Date(now.getTime() + CERT_LIFETIME_MS));
  // Key first: a crash between the two renames leaves a pair that does not match, which the next
  // start detects and replaces.
  await writeAtomically(keyPath, pair.keyPem, 0o600);
  await writeAtomically(certPath, pair.certPem, 0o644);
  return { ...pair, keyPath, certPath, created: true, replaced: keyPem !== null || certPem !== null, reason };
}

/** unusable says why a stored pair cannot sign at `now`, or null when it can. */
function unusable(keyPem: string, certPem: string, certPath: string, now: Date): string | null {
  let notAfter: Date;
  try {
    notAfter = parseIdpCertificate(certPem, now, `the certificate ${certPath}`).notAfter;
  } catch (err) {
    if (err instanceof IdpCertificateError) return err.message;
    throw err;
  }
  if (notAfter.getTime() - now.getTime() <= EXPIRY_WARNING_MS) {
    return `the certificate ${certPath} expires on ${notAfter.toISOString()}, within ${EXPIRY_WARNING_MS / 86_400_000} days`;
  }
  try {
    if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) return `the key does not belong to the certificate ${certPath}`;
  } catch {
    // createPrivateKey throws on anything that is not a private key; that is all it tells.
    return `the key next to ${certPath} is not a readable private key`;
  }
  return null;
}
