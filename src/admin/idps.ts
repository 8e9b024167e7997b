/**
 * idps: what the admin needs to know about each IdP, as ZIA's IdP page shows it: the SP metadata to
 * paste into the IdP, the SCIM base URL and when its token was made, and the certificate's expiry.
 */
import { EXPIRY_WARNING_MS } from '../auth/certificate.js';
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
  readonly certificate: {
    readonly subject: string;
    readonly fingerprintSha256: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly daysLeft: number;
    /** expiring: within the 30 days in which activation already warns. */
    readonly expiring: boolean;
  };
}

/** idpViews describes every configured IdP of a runtime. */
export async function idpViews(rt: Runtime, tokens: ScimTokens, now = Date.now()): Promise<IdpView[]> {
  return Promise.all(
    [...rt.idps.values()].map(async ({ config: c, certificate: cert, sp }) => {
      const tenant = `${rt.config.orgId}/${c.id}`;
      const token = c.provisioning === 'scim' ? await tokens.info(tenant) : null;
      const left = cert.notAfter.getTime() - now;
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
        certificate: {
          subject: cert.subject,
          fingerprintSha256: cert.fingerprintSha256,
          notBefore: cert.notBefore.toISOString(),
          notAfter: cert.notAfter.toISOString(),
          daysLeft: Math.floor(left / 86_400_000),
          expiring: left < EXPIRY_WARNING_MS,
        },
      };
    }),
  );
}

/** scimBaseUrl is an IdP's SCIM base URL through the proxy, as Okta's "SCIM connector base URL" wants it. */
export function scimBaseUrl(rt: Runtime, idp: string): string {
  return `http://scim.${rt.cloud}/${rt.config.orgId}/${idp}/scim`;
}
