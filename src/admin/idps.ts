/**
 * idps: what the admin needs to know about each IdP, as ZIA's IdP page shows it: the SP metadata to
 * paste into the IdP, the SCIM base URL and when its token was made, and the certificate's expiry.
 */
import { EXPIRY_WARNING_MS, type IdpCertificate } from '../auth/certificate.js';
import type { Runtime } from '../runtime.js';
import type { ScimTokens } from '../scim/tokens.js';

/** IdpView is one IdP in the admin API. */
export interface IdpView {
  readonly id: string;
  readonly name: string;
  readonly default: boolean;
  readonly entityId: string;
  readonly ssoUrl: string;
  readonly domains: readonly string[];
  readonly locations: readonly string[];
  readonly provisioning: 'jit' | 'scim';
  readonly sp: { readonly entityId: string; readonly acsUrl: string; readonly metadataUrl: string };
  /** SCIM: the base URL, the tenant ("Zscaler ID") and when its token was made (null: none yet). */
  readonly scim: { readonly baseUrl: string; readonly tenant: string; readonly tokenCreatedAt: string | null } | null;
  /** certificate is the first signing certificate; certificates all of them (two during a rollover). */
  readonly certificate: CertificateView;
  readonly certificates: readonly CertificateView[];
}

/** CertificateView is one signing certificate and how long it has left. */
export interface CertificateView {
  readonly subject: string;
  readonly fingerprintSha256: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly daysLeft: number;
  /** expiring: within the 30 days in which activation already warns. */
  readonly expiring: boolean;
}

function certificateView(cert: IdpCertificate, now: number): CertificateView {
  const left = cert.notAfter.getTime() - now;
  return {
    subject: cert.subject,
    fingerprintSha256: cert.fingerprintSha256,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    daysLeft: Math.floor(left / 86_400_000),
    expiring: left < EXPIRY_WARNING_MS,
  };
}

/** idpViews describes every configured IdP of a runtime. */
export async function idpViews(rt: Runtime, tokens: ScimTokens, now = Date.now()): Promise<IdpView[]> {
  return Promise.all(
    [...rt.idps.values()].map(async ({ config: c, certificate: cert, certificates, sp }) => {
      const tenant = `${rt.config.orgId}/${c.id}`;
      const token = c.provisioning === 'scim' ? await tokens.info(tenant) : null;
      return {
        id: c.id,
        name: c.name,
        default: c.default,
        entityId: c.entityId,
        ssoUrl: c.ssoUrl,
        domains: c.domains,
        locations: c.locations,
        provisioning: c.provisioning,
        sp: { entityId: sp.entityId, acsUrl: sp.acsUrl, metadataUrl: `http://login.${rt.cloud}/saml/metadata/${c.id}` },
        scim: c.provisioning === 'scim' ? { baseUrl: scimBaseUrl(rt, c.id), tenant, tokenCreatedAt: token?.createdAt ?? null } : null,
        certificate: certificateView(cert, now),
        certificates: certificates.map((x) => certificateView(x, now)),
      };
    }),
  );
}

/** scimBaseUrl is an IdP's SCIM base URL through the proxy, as Okta's "SCIM connector base URL" wants it. */
export function scimBaseUrl(rt: Runtime, idp: string): string {
  return `http://scim.${rt.cloud}/${rt.config.orgId}/${idp}/scim`;
}
