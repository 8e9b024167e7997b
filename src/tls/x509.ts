/**
 * x509: building and reading X.509 v3 certificates (RFC 5280).
 *
 * node-forge encodes the parts it knows well (names, extensions); the TBSCertificate around them is
 * assembled here from bytes, so the issuer name and the public key go in exactly as they came out of
 * the CA certificate and Node's crypto, and so keys forge cannot represent (ECDSA) work the same as
 * RSA. The TBS is signed with Node's crypto: about a millisecond for RSA-2048, against ~50 ms for
 * forge's JavaScript RSA.
 */
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type Forge from 'node-forge';

/** node-forge loads on the first certificate built (a leaf at the first inspected tunnel, or `ca init`), not at start. */
let forgeLib: typeof Forge | null = null;
const forge = (): typeof Forge => (forgeLib ??= createRequire(import.meta.url)('node-forge') as typeof Forge);
import { children, oidBytes, readElement, TAG, tlv, type Element } from './der.js';

/** NameAttribute is one RDN attribute as forge names it (`commonName`, `organizationName`, ...). */
export interface NameAttribute {
  readonly name: string;
  readonly value: string;
}

/** CertificateSpec is everything one certificate says, plus the key that signs it. */
export interface CertificateSpec {
  readonly subject: readonly NameAttribute[];
  /** issuer is the issuing CA's subject Name, as DER; absent for a self-signed certificate. */
  readonly issuer?: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** publicKey is the subject's key. */
  readonly publicKey: KeyObject;
  /** signingKey is the issuer's private key. */
  readonly signingKey: KeyObject;
  /** extensions are forge extension descriptors (`{ name: 'basicConstraints', cA: true, critical: true }`). */
  readonly extensions: readonly object[];
}

/** SignatureAlgorithm is how a key signs: the hash for Node's crypto and the DER AlgorithmIdentifier. */
export interface SignatureAlgorithm {
  readonly hash: 'sha256' | 'sha384';
  readonly identifier: Buffer;
}

/** UnsupportedKeyError: the key is of a type certificates here cannot be signed with. */
export class UnsupportedKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedKeyError';
  }
}

const algorithmIdentifier = (oid: string, withNull: boolean): Buffer =>
  tlv(TAG.SEQUENCE, tlv(TAG.OID, oidBytes(oid)), ...(withNull ? [Buffer.from([TAG.NULL, 0])] : []));

// sha256WithRSAEncryption carries NULL parameters (RFC 4055 §5); ecdsa-with-SHA* carries none (RFC 5758 §3.2).
const RSA_SHA256 = algorithmIdentifier('1.2.840.113549.1.1.11', true);
const ECDSA_SHA256 = algorithmIdentifier('1.2.840.10045.4.3.2', false);
const ECDSA_SHA384 = algorithmIdentifier('1.2.840.10045.4.3.3', false);

/** signatureAlgorithm picks the algorithm for a private key: RSA (2048 bits or more) or ECDSA P-256 / P-384. */
export function signatureAlgorithm(key: KeyObject): SignatureAlgorithm {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    if ((d.modulusLength ?? 0) < 2048) throw new UnsupportedKeyError(`an RSA key of ${d.modulusLength} bits is too weak (2048 or more)`);
    return { hash: 'sha256', identifier: RSA_SHA256 };
  }
  if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve === 'prime256v1') return { hash: 'sha256', identifier: ECDSA_SHA256 };
    if (d.namedCurve === 'secp384r1') return { hash: 'sha384', identifier: ECDSA_SHA384 };
    throw new UnsupportedKeyError(`the EC curve ${d.namedCurve} is not one browsers accept (P-256 or P-384)`);
  }
  throw new UnsupportedKeyError(`${key.asymmetricKeyType} keys are not supported (RSA or ECDSA)`);
}

/** keyIdentifier is the SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1). */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const bits = children(readElement(spkiDer))[1];
  if (bits === undefined || bits.tag !== TAG.BIT_STRING) throw new Error('not a SubjectPublicKeyInfo');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

/** nameDer encodes a distinguished name with forge. */
export function nameDer(attrs: readonly NameAttribute[]): Buffer {
  const f = forge();
  const c = f.pki.createCertificate();
  c.setSubject(attrs.map((a) => ({ ...a })));
  return fromForge(f.pki.distinguishedNameToAsn1(c.subject));
}

/** extensionsDer encodes `[3] Extensions` with forge, which fills in each extension's value. */
function extensionsDer(exts: readonly object[]): Buffer {
  const f = forge();
  const c = f.pki.createCertificate();
  c.setExtensions(exts.map((e) => ({ ...e })));
  const toAsn1 = (f.pki as unknown as { certificateExtensionsToAsn1(e: unknown[]): Forge.asn1.Asn1 }).certificateExtensionsToAsn1;
  return fromForge(toAsn1(c.extensions as unknown[]));
}

const fromForge = (a: Forge.asn1.Asn1): Buffer => Buffer.from(forge().asn1.toDer(a).getBytes(), 'binary');

/** time encodes a validity date: UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString();
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'ascii')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'ascii'));
}

/** serialNumber is 16 random bytes, positive, with no leading zero (RFC 5280 §4.1.2.2; CA/B BR §7.1: 64+ random bits). */
function serialNumber(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return tlv(TAG.INTEGER, b);
}

/** PreparedCertificate is a TBSCertificate waiting for its signature. */
export interface PreparedCertificate {
  readonly tbs: Buffer;
  readonly algorithm: SignatureAlgorithm;
}

/** prepareCertificate assembles the TBSCertificate (RFC 5280 §4.1). */
export function prepareCertificate(spec: CertificateSpec, algorithm: SignatureAlgorithm = signatureAlgorithm(spec.signingKey)): PreparedCertificate {
  const subject = nameDer(spec.subject);
  const spki = spec.publicKey.export({ type: 'spki', format: 'der' });
  const tbs = tlv(
    TAG.SEQUENCE,
    tlv(TAG.CTX0, tlv(TAG.INTEGER, Buffer.from([2]))), // v3
    serialNumber(),
    algorithm.identifier,
    spec.issuer ?? subject,
    tlv(TAG.SEQUENCE, time(spec.notBefore), time(spec.notAfter)),
    subject,
    spki,
    extensionsDer(spec.extensions),
  );
  return { tbs, algorithm };
}

/** finishCertificate wraps a TBS and its signature into a DER Certificate. */
export function finishCertificate(p: PreparedCertificate, signature: Buffer): Buffer {
  return tlv(TAG.SEQUENCE, p.tbs, p.algorithm.identifier, tlv(TAG.BIT_STRING, Buffer.from([0]), signature));
}

/** issueCertificate builds and signs a certificate at once (ECDSA signatures come out DER-encoded, as X.509 wants). */
export function issueCertificate(spec: CertificateSpec): Buffer {
  const p = prepareCertificate(spec);
  return finishCertificate(p, sign(p.algorithm.hash, p.tbs, spec.signingKey));
}

/** toPem wraps DER as a PEM CERTIFICATE block (RFC 7468 §5). */
export function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

/** CertificateFacts is what a CA check and a leaf issuer read from a certificate's bytes. */
export interface CertificateFacts {
  readonly subject: Buffer;
  readonly issuer: Buffer;
  readonly spki: Buffer;
  readonly subjectKeyId: Buffer | null;
  /** keyUsage bits (RFC 5280 §4.2.1.3); null when the extension is absent. */
  readonly keyUsage: { readonly digitalSignature: boolean; readonly keyCertSign: boolean; readonly cRLSign: boolean } | null;
  readonly keyUsageCritical: boolean;
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen: number | null; readonly critical: boolean } | null;
}

const OID_SKI = oidBytes('2.5.29.14');
const OID_KEY_USAGE = oidBytes('2.5.29.15');
const OID_BASIC_CONSTRAINTS = oidBytes('2.5.29.19');

/** readCertificateFacts walks a DER certificate; it throws DerError on bytes that are not one. */
export function readCertificateFacts(der: Buffer): CertificateFacts {
  const tbs = children(readElement(der))[0];
  if (tbs === undefined || tbs.tag !== TAG.SEQUENCE) throw new Error('not a certificate');
  const parts = children(tbs);
  const fields = parts[0]?.tag === TAG.CTX0 ? parts.slice(1) : parts;
  const [, , issuer, , subject, spki] = fields;
  if (issuer === undefined || subject === undefined || spki === undefined) throw new Error('not a certificate');
  let subjectKeyId: Buffer | null = null;
  let keyUsage: CertificateFacts['keyUsage'] = null;
  let keyUsageCritical = false;
  let basicConstraints: CertificateFacts['basicConstraints'] = null;
  const exts = fields.find((f) => f.tag === TAG.CTX3);
  for (const ext of exts ? children(children(exts)[0]!) : []) {
    const [id, second, third] = children(ext);
    const critical = second?.tag === TAG.BOOLEAN && second.content[0] !== 0;
    const value = (second?.tag === TAG.OCTET_STRING ? second : third)!.content;
    if (id!.content.equals(OID_SKI)) subjectKeyId = Buffer.from(readElement(value).content);
    else if (id!.content.equals(OID_KEY_USAGE)) {
      const bits = readElement(value).content;
      const b0 = bits[1] ?? 0;
      keyUsage = { digitalSignature: (b0 & 0x80) !== 0, keyCertSign: (b0 & 0x04) !== 0, cRLSign: (b0 & 0x02) !== 0 };
      keyUsageCritical = critical;
    } else if (id!.content.equals(OID_BASIC_CONSTRAINTS)) {
      const inner: Element[] = children(readElement(value));
      const ca = inner[0]?.tag === TAG.BOOLEAN && inner[0].content[0] !== 0;
      const len = inner.find((e) => e.tag === TAG.INTEGER);
      basicConstraints = { ca, pathLen: len ? len.content.reduce((n, b) => n * 256 + b, 0) : null, critical };
    }
  }
  return { subject: Buffer.from(subject.raw), issuer: Buffer.from(issuer.raw), spki: Buffer.from(spki.raw), subjectKeyId, keyUsage, keyUsageCritical, basicConstraints };
}
