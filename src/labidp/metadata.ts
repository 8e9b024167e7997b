/**
 * metadata: the lab IdP's SAML metadata (SAML Metadata §2.4.3, IDPSSODescriptor). NOT FOR PRODUCTION.
 *
 * The lab IdP hands samlify this document instead of samlify's metadata options: built from
 * options, samlify warns on the console when no SingleLogoutService is given, and the lab IdP has no
 * logout to offer (it keeps no session; every AuthnRequest asks for the password again). Okta's
 * metadata likewise lists SingleLogoutService only when SLO is turned on.
 */
import { esc } from './response.js';

/** LabIdpMetadataInput is what the metadata says. */
export interface LabIdpMetadataInput {
  readonly entityId: string;
  readonly ssoUrl: string;
  readonly certPem: string;
}

const NS_MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const NS_DS = 'http://www.w3.org/2000/09/xmldsig#';
const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

/**
 * labIdpMetadataXml lists one signing key, the email NameID format and one HTTP-Redirect SSO
 * endpoint. AuthnRequests need not be signed (WantAuthnRequestsSigned="false"), as Okta's default.
 */
export function labIdpMetadataXml(i: LabIdpMetadataInput): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<md:EntityDescriptor xmlns:md="${NS_MD}" xmlns:ds="${NS_DS}" entityID="${esc(i.entityId)}">` +
    `<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="${PROTOCOL}">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(i.certPem)}</ds:X509Certificate>` +
    `</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:NameIDFormat>${NAMEID_EMAIL}</md:NameIDFormat>` +
    `<md:SingleSignOnService Binding="${BINDING_REDIRECT}" Location="${esc(i.ssoUrl)}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

/** certBody is the base64 DER between the PEM armour lines, without line breaks. */
function certBody(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (m === null) throw new Error('lab IdP signing certificate is not a PEM certificate');
  return m[1]!.replace(/\s+/g, '');
}
