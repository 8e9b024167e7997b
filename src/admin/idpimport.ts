/**
 * idpimport: an IdP's SAML metadata (Okta's "Identity Provider metadata", Entra's federation
 * metadata, any SAML 2.0 IdP's) turned into an `idps:` entry and its certificate file.
 *
 *   metadata XML -> EntityDescriptor/@entityID
 *                -> IDPSSODescriptor/SingleSignOnService[@Binding = HTTP-Redirect]/@Location
 *                -> IDPSSODescriptor/KeyDescriptor[@use = signing or absent]//X509Certificate (one or more)
 *                -> IDPSSODescriptor/NameIDFormat
 *
 * SAML Metadata §2.4.3 (IDPSSODescriptor), §2.4.1.1 (KeyDescriptor: no `use` means both signing and
 * encryption). Every signing certificate is kept, so an IdP in the middle of a key rollover (two
 * certificates) is honoured with either. The XML is parsed as strictly as a SAML response (no DTDs,
 * bounded size).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdpCertificateError, parseIdpCertificate, type IdpCertificate } from '../auth/certificate.js';
import { SamlError } from '../auth/samlerror.js';
import { children, NS_DSIG, parseSamlXml, text } from '../auth/samlxml.js';
import { HttpError } from '../http/errors.js';

const NS_MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/** MetadataCode is why metadata cannot be imported. */
export type MetadataCode = 'METADATA_NOT_XML' | 'METADATA_NO_IDP' | 'METADATA_NO_SIGNING_KEY' | 'METADATA_NO_REDIRECT' | 'METADATA_CERT_EXPIRED' | 'METADATA_CERT_UNREADABLE';

/** MetadataError says why, with a stable code. */
export class MetadataError extends Error {
  override readonly name = 'MetadataError';
  constructor(
    readonly code: MetadataCode,
    message: string,
  ) {
    super(message);
  }
}

/** IdpMetadata is what an import takes from the metadata. */
export interface IdpMetadata {
  readonly entityId: string;
  readonly ssoUrl: string;
  readonly certificates: readonly IdpCertificate[];
  readonly nameIdFormats: readonly string[];
}

/** readIdpMetadata reads IdP metadata; it throws MetadataError naming the first thing missing. */
export function readIdpMetadata(xml: string, now: Date = new Date()): IdpMetadata {
  let doc: Document;
  try {
    doc = parseSamlXml(xml);
  } catch (err) {
    if (err instanceof SamlError) throw new MetadataError('METADATA_NOT_XML', `not XML metadata: ${err.reason ?? err.message}`);
    throw err;
  }
  const root = doc.documentElement!;
  const entities = root.namespaceURI === NS_MD && root.localName === 'EntitiesDescriptor' ? children(root, NS_MD, 'EntityDescriptor') : [root];
  const entity = entities.find((e) => e.namespaceURI === NS_MD && e.localName === 'EntityDescriptor' && children(e, NS_MD, 'IDPSSODescriptor').length > 0);
  if (entity === undefined) throw new MetadataError('METADATA_NO_IDP', 'the metadata has no EntityDescriptor with an IDPSSODescriptor (is it the SP side, or not SAML metadata?)');
  const entityId = entity.getAttribute('entityID') ?? '';
  if (entityId === '') throw new MetadataError('METADATA_NO_IDP', 'the EntityDescriptor has no entityID');
  const idp = children(entity, NS_MD, 'IDPSSODescriptor')[0]!;

  const sso = children(idp, NS_MD, 'SingleSignOnService').find((s) => s.getAttribute('Binding') === REDIRECT);
  const ssoUrl = sso?.getAttribute('Location') ?? '';
  if (!/^https?:\/\/\S+$/.test(ssoUrl)) {
    throw new MetadataError('METADATA_NO_REDIRECT', 'the IdP offers no SingleSignOnService with the HTTP-Redirect binding (Tollgate sends AuthnRequests that way)');
  }

  const bodies: string[] = [];
  for (const kd of children(idp, NS_MD, 'KeyDescriptor')) {
    const use = kd.getAttribute('use');
    if (use !== null && use !== '' && use !== 'signing') continue;
    for (const ki of children(kd, NS_DSIG, 'KeyInfo')) {
      for (const x of children(ki, NS_DSIG, 'X509Data')) for (const c of children(x, NS_DSIG, 'X509Certificate')) bodies.push(text(c).replace(/\s+/g, ''));
    }
  }
  const unique = [...new Set(bodies.filter((b) => b !== ''))];
  if (unique.length === 0) throw new MetadataError('METADATA_NO_SIGNING_KEY', 'the IDPSSODescriptor has no signing certificate (KeyDescriptor use="signing" with an X509Certificate)');
  const certificates = unique.map((b, i) => {
    const pem = `-----BEGIN CERTIFICATE-----\n${b.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    try {
      return parseIdpCertificate(pem, now, unique.length > 1 ? `signing certificate ${i + 1} of ${unique.length}` : 'signing certificate');
    } catch (err) {
      if (err instanceof IdpCertificateError) throw new MetadataError(err.code === 'IDP_CERT_EXPIRED' ? 'METADATA_CERT_EXPIRED' : 'METADATA_CERT_UNREADABLE', err.message);
      throw err;
    }
  });
  return { entityId, ssoUrl, certificates, nameIdFormats: children(idp, NS_MD, 'NameIDFormat').map((n) => text(n)) };
}

/** ImportOptions are the admin's choices for the entry. */
export interface ImportOptions {
  readonly id: string;
  readonly name?: string;
  readonly domains: readonly string[];
}

/** idpEntry is the `idps:` entry for imported metadata; `certificate` is the path the config names. */
export function idpEntry(m: IdpMetadata, o: ImportOptions, certificate: string): Record<string, unknown> {
  return {
    id: o.id,
    name: o.name ?? o.id,
    ssoUrl: m.ssoUrl,
    certificate,
    entityId: m.entityId,
    // An IdP that maps no domain can only be the default one.
    ...(o.domains.length === 0 ? { default: true } : { domains: [...o.domains] }),
  };
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** checkImportOptions validates the id and domains before anything is written. */
export function checkImportOptions(id: unknown, domains: unknown, name: unknown): ImportOptions {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw new HttpError(400, 'bad_request', 'id must be 1-64 letters, digits, _ or -.');
  const list = domains === undefined ? [] : domains;
  if (!Array.isArray(list) || list.length > 100 || !list.every((d) => typeof d === 'string' && /^[a-z0-9.-]{1,253}$/i.test(d))) {
    throw new HttpError(400, 'bad_request', 'domains must be a list of domain names.');
  }
  if (name !== undefined && (typeof name !== 'string' || name === '' || name.length > 128)) throw new HttpError(400, 'bad_request', 'name must be 1-128 characters.');
  return { id, domains: list as string[], ...(typeof name === 'string' ? { name } : {}) };
}

/** writeCertificates writes every signing certificate of the metadata to `<dir>/<id>.pem`; returns the path. */
export function writeCertificates(dir: string, id: string, m: IdpMetadata): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${id}.pem`);
  writeFileSync(file, m.certificates.map((c) => c.pem).join(''));
  // Certificates are public; the file is readable by whoever runs Tollgate.
  chmodSync(file, 0o644);
  return file;
}
