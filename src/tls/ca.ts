/**
 * ca: Tollgate's TLS-inspection certificate authority, kept in certs/ (never committed).
 *
 *   certs/ca/ca.crt  the CA certificate (PEM; an imported intermediate may be followed by its issuers)
 *   certs/ca/ca.key  its private key (PKCS#8 PEM, mode 0600)
 *
 * `tollgate ca init` creates a root (createCa); `tollgate ca import` takes an admin's own CA after
 * checkCa has found it usable; activation loads it with loadCa. A CA must be a CA (basicConstraints
 * CA:TRUE, keyCertSign when keyUsage is present), valid now, and hold the key that matches it.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EXPIRY_WARNING_MS } from '../auth/certificate.js';
import { readIfThere, writeAtomically } from '../files.js';
import { TAG, tlv } from './der.js';
import { issueCertificate, keyIdentifier, readCertificateFacts, signatureAlgorithm, toPem, UnsupportedKeyError, type CertificateFacts } from './x509.js';

/** CA_KEY_TYPES are the keys `ca init` makes: RSA of 2048 bits or more, or ECDSA P-256. */
export const CA_KEY_TYPES = ['rsa2048', 'rsa3072', 'rsa4096', 'p256'] as const;
export type CaKeyType = (typeof CA_KEY_TYPES)[number];

/** CA_VALIDITY_DAYS is a new root's lifetime: ten years, as an enterprise root. */
export const CA_VALIDITY_DAYS = 3650;

/** LAB_CA_NAME labels a CA made for the embedded lab default; `ca show` and the status page say so. */
export const LAB_CA_NAME = 'Tollgate LAB CA - NOT FOR PRODUCTION';

const DAY_MS = 86_400_000;

/** CaErrorCode names why a CA cannot be used; codes are stable. */
export type CaErrorCode =
  | 'CA_MISSING'
  | 'CA_EXISTS'
  | 'CA_UNREADABLE'
  | 'CA_NOT_CA'
  | 'CA_EXPIRED'
  | 'CA_NOT_YET_VALID'
  | 'CA_KEY_UNREADABLE'
  | 'CA_KEY_ENCRYPTED'
  | 'CA_KEY_UNSUPPORTED'
  | 'CA_KEY_MISMATCH';

/** CaError is a CA problem with a stable code and a message an admin can act on. */
export class CaError extends Error {
  constructor(
    readonly code: CaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CaError';
  }
}

/** CaPaths are where the CA lives on disk. */
export interface CaPaths {
  readonly cert: string;
  readonly key: string;
}

/** CertificateAuthority is a checked CA, ready to issue leaves. */
export interface CertificateAuthority {
  /** certPem is the CA certificate alone; certDer the same as DER (served at /ca.crt). */
  readonly certPem: string;
  readonly certDer: Buffer;
  /** chainPem goes after a leaf in a handshake: the CA and its issuers, except self-signed roots. */
  readonly chainPem: string;
  readonly key: KeyObject;
  readonly facts: CertificateFacts;
  /** keyId is the CA's subject key identifier, which leaves carry as their authority key identifier. */
  readonly keyId: Buffer;
  readonly x509: X509Certificate;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyDescription: string;
  readonly lab: boolean;
  /** warning is set when the CA expires within 30 days. */
  readonly warning: string | null;
}

/** CreateCaOptions shape a new root. */
export interface CreateCaOptions {
  readonly commonName?: string;
  readonly keyType?: CaKeyType;
  readonly validityDays?: number;
  /**
   * permittedDomains become dNSName name constraints (RFC 5280 §4.2.1.10): clients then accept
   * leaves from this CA only for these domains and their subdomains, so a stolen key cannot
   * impersonate the rest of the web.
   */
  readonly permittedDomains?: readonly string[];
  readonly lab?: boolean;
  readonly now?: Date;
}

/** createCa makes a root CA's key with Node's crypto and its certificate with node-forge. */
export function createCa(opts: CreateCaOptions = {}): { certPem: string; keyPem: string } {
  const keyType = opts.keyType ?? 'rsa2048';
  const pair =
    keyType === 'p256'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateKeyPairSync('rsa', { modulusLength: Number(keyType.slice(3)) });
  const now = opts.now ?? new Date();
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const cn = opts.lab ? LAB_CA_NAME : (opts.commonName ?? 'Tollgate Inspection CA');
  const extensions: object[] = [
    // RFC 5280 §4.2.1.9: basicConstraints MUST be critical in CA certificates; pathlen 0: no sub-CAs.
    { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
    // §4.2.1.3: keyUsage SHOULD be critical; a CA that signs certificates and CRLs needs just these two.
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
    { name: 'subjectKeyIdentifier', value: tlv(TAG.OCTET_STRING, keyIdentifier(spki)).toString('binary') },
  ];
  if (opts.permittedDomains && opts.permittedDomains.length > 0) {
    // §4.2.1.10: conforming CAs MUST mark nameConstraints critical.
    extensions.push({ id: '2.5.29.30', critical: true, value: nameConstraints(opts.permittedDomains).toString('binary') });
  }
  const der = issueCertificate({
    subject: [
      { name: 'commonName', value: cn },
      { name: 'organizationName', value: opts.lab ? 'Tollgate lab' : 'Tollgate' },
    ],
    // Backdated an hour, so a client whose clock runs a little slow accepts it at once.
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + (opts.validityDays ?? CA_VALIDITY_DAYS) * DAY_MS),
    publicKey: pair.publicKey,
    signingKey: pair.privateKey,
    extensions,
  });
  return { certPem: toPem(der), keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** nameConstraints encodes permittedSubtrees of dNSNames (RFC 5280 §4.2.1.10). */
function nameConstraints(domains: readonly string[]): Buffer {
  // GeneralSubtree ::= SEQUENCE { base GeneralName, ... }; dNSName is [2] IMPLICIT IA5String.
  const subtrees = domains.map((d) => tlv(TAG.SEQUENCE, tlv(0x82, Buffer.from(d.toLowerCase(), 'ascii'))));
  return tlv(TAG.SEQUENCE, tlv(TAG.CTX0, ...subtrees));
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * checkCa reads a CA certificate (PEM; issuers may follow it) and its private key, and checks
 * that they can issue leaves at `now`. `label` names the files in messages.
 */
export function checkCa(certText: string, keyText: string, now: Date = new Date(), label = 'the CA certificate'): CertificateAuthority {
  const blocks = certText.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new CaError('CA_UNREADABLE', `${label} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  let certs: X509Certificate[];
  try {
    certs = blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw new CaError('CA_UNREADABLE', `${label} could not be read: ${(err as Error).message}`);
  }
  const x509 = certs[0]!;
  let facts: CertificateFacts;
  try {
    facts = readCertificateFacts(x509.raw);
  } catch (err) {
    // OpenSSL parsed it, so this is a layout the walker does not know; say so rather than guess.
    throw new CaError('CA_UNREADABLE', `${label} could not be read: ${(err as Error).message}`);
  }
  const subject = x509.subject.split('\n').join(', ');
  if (facts.basicConstraints?.ca !== true) {
    throw new CaError('CA_NOT_CA', `${label} (${subject}) is not a CA certificate: its basicConstraints do not say CA:TRUE`);
  }
  if (facts.keyUsage !== null && !facts.keyUsage.keyCertSign) {
    throw new CaError('CA_NOT_CA', `${label} (${subject}) may not sign certificates: its keyUsage lacks keyCertSign`);
  }
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (now.getTime() >= notAfter.getTime()) throw new CaError('CA_EXPIRED', `${label} (${subject}) expired on ${notAfter.toISOString()}`);
  if (now.getTime() < notBefore.getTime()) throw new CaError('CA_NOT_YET_VALID', `${label} (${subject}) is not valid before ${notBefore.toISOString()}`);
  // Told by its PEM label (RFC 7468 §11) or legacy header: OpenSSL's own error for a missing passphrase names neither.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText)) {
    throw new CaError('CA_KEY_ENCRYPTED', 'the CA key is encrypted; give Tollgate an unencrypted key (e.g. `openssl pkey -in KEY -out PLAIN`), kept mode 0600');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch {
    // createPrivateKey throws on anything that is not a private key; that is all it tells.
    throw new CaError('CA_KEY_UNREADABLE', 'the CA key is not a readable PEM private key');
  }
  try {
    signatureAlgorithm(key);
  } catch (err) {
    if (err instanceof UnsupportedKeyError) throw new CaError('CA_KEY_UNSUPPORTED', `the CA key cannot sign leaves: ${err.message}`);
    throw err;
  }
  if (!x509.checkPrivateKey(key)) throw new CaError('CA_KEY_MISMATCH', `the key does not belong to ${label} (${subject})`);
  const selfSigned = (c: X509Certificate) => c.checkIssued(c) && c.verify(c.publicKey);
  const left = notAfter.getTime() - now.getTime();
  return {
    certPem: x509.toString(),
    certDer: x509.raw,
    chainPem: certs.filter((c) => !selfSigned(c)).map((c) => c.toString()).join(''),
    key,
    facts,
    keyId: facts.subjectKeyId ?? keyIdentifier(facts.spki),
    x509,
    subject,
    notBefore,
    notAfter,
    keyDescription: describeKey(key),
    lab: subject.includes(LAB_CA_NAME),
    warning: left <= EXPIRY_WARNING_MS ? `${label} (${subject}) expires on ${notAfter.toISOString()}, in ${Math.ceil(left / DAY_MS)} day(s); make or import a new one` : null,
  };
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return `RSA ${d.modulusLength}`;
  return d.namedCurve === 'prime256v1' ? 'ECDSA P-256' : d.namedCurve === 'secp384r1' ? 'ECDSA P-384' : String(key.asymmetricKeyType);
}

/** loadCa reads and checks the CA at `paths`; CA_MISSING when either file is absent. */
export async function loadCa(paths: CaPaths, now: Date = new Date()): Promise<CertificateAuthority> {
  const [cert, key] = await Promise.all([readIfThere(paths.cert), readIfThere(paths.key)]);
  if (cert === null || key === null) {
    throw new CaError('CA_MISSING', `no CA at ${cert === null ? paths.cert : paths.key}: create one with \`tollgate ca init\`, or import your own with \`tollgate ca import CERT KEY\``);
  }
  const ca = checkCa(cert, key, now, `the CA certificate ${paths.cert}`);
  // A key copied in by hand may be readable by others; the CA key is the most sensitive secret here.
  if (((await stat(paths.key)).mode & 0o077) !== 0) await chmod(paths.key, 0o600);
  return ca;
}

/** writeCa stores a CA: the key (PKCS#8) mode 0600 in a 0700 folder, first, then the certificate. */
export async function writeCa(paths: CaPaths, certPem: string, key: KeyObject | string, opts: { force?: boolean } = {}): Promise<void> {
  if (!opts.force && ((await readIfThere(paths.cert)) !== null || (await readIfThere(paths.key)) !== null)) {
    throw new CaError('CA_EXISTS', `a CA is already at ${paths.cert}; leaves it signed stop being trusted once it is replaced, so pass --force to replace it`);
  }
  await mkdir(dirname(paths.key), { recursive: true, mode: 0o700 });
  await mkdir(dirname(paths.cert), { recursive: true, mode: 0o755 });
  const keyPem = typeof key === 'string' ? createPrivateKey(key).export({ type: 'pkcs8', format: 'pem' }).toString() : key.export({ type: 'pkcs8', format: 'pem' }).toString();
  // Key first: a crash between the two leaves a pair that does not match, which loadCa reports.
  await writeAtomically(paths.key, keyPem, 0o600);
  await writeAtomically(paths.cert, certPem, 0o644);
}

/** describeCa is what `tollgate ca show` prints. */
export function describeCa(ca: CertificateAuthority, certPath: string, cloud: string): string {
  const issuer = ca.x509.issuer.split('\n').join(', ');
  const rows: [string, string][] = [
    ['Subject', `${ca.subject}${ca.lab ? '   (a LAB CA: NOT FOR PRODUCTION)' : ''}`],
    ...(issuer !== ca.subject ? [['Issuer', issuer] as [string, string]] : []),
    ['Key', ca.keyDescription],
    ['SHA-256 fingerprint', ca.x509.fingerprint256],
    ['SHA-1 fingerprint', ca.x509.fingerprint],
    ['Valid from', ca.notBefore.toISOString()],
    ['Expires', ca.notAfter.toISOString()],
    ['Certificate file', certPath],
  ];
  return [
    ...rows.map(([k, v]) => `${`${k}:`.padEnd(21)}${v}`),
    `Users install it from http://ip.${cloud}/ca.crt (DER) or http://ip.${cloud}/ca.pem (PEM).`,
    ...(ca.warning ? [`Warning: ${ca.warning}`] : []),
    '',
  ].join('\n');
}
