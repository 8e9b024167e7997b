/**
 * saml: Tollgate's SAML 2.0 service provider, one SamlSp per configured IdP, built at activation.
 *
 *   browser -> gateway -> SamlSp.authorizeUrl -> IdP (HTTP-Redirect, SAML Bindings §3.4)
 *   IdP -> browser -> POST http://login.<cloud>/sfc_sso -> SamlSp.validate -> SamlIdentity
 *
 * node-saml (@node-saml/node-saml) builds AuthnRequests and our metadata. samlresponse checks a
 * response (parsed once, DTDs refused; every signature verified against the configured certificate
 * by xmldsig, and only the signed bytes read for the identity; Status, InResponseTo, Issuer,
 * Destination, Recipient, times and audience by samlcheck). The request ID and the
 * assertion ID are consumed once each, atomically in the shared store, so a response is accepted
 * once even when posted to several nodes at the same instant.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { createRequire } from 'node:module';
import type { SAML, SamlConfig } from '@node-saml/node-saml';
import type { Store } from '../sessions/store.js';
import type { Expect } from './samlcheck.js';
import { SamlError } from './samlerror.js';
import { readResponse, verifyResponse, type ResponsePolicy, type SamlIdentity } from './samlresponse.js';
import { NAMEID_EMAIL, parseSamlXml, type ResponseEnvelope } from './samlxml.js';

export { SamlError, type SamlErrorCode } from './samlerror.js';
export type { SamlIdentity } from './samlresponse.js';

/** IdpSettings is one IdP of the config, as ZIA's "Add IdP" window holds it, with defaults applied. */
export interface IdpSettings {
  readonly id: string;
  readonly name: string;
  /** ssoUrl is the IdP's SAML portal URL (Okta's "Sign on URL"). */
  readonly ssoUrl: string;
  readonly idpCertPem: string;
  /** idpEntityId is the Issuer every response and assertion must carry. */
  readonly idpEntityId: string;
  /** loginNameAttribute is `NameID` or an attribute name, compared case-sensitively as ZIA does. */
  readonly loginNameAttribute: string;
  readonly displayNameAttribute: string;
  readonly groupsAttribute: string;
  readonly departmentAttribute: string;
  readonly orgSpecificEntityId: boolean;
  /** signRequest signs AuthnRequests with spKeyPem (off by default: Okta does not want it). */
  readonly signRequest: boolean;
  readonly spKeyPem?: string;
  readonly spCertPem?: string;
  readonly wantResponseSigned: boolean;
  readonly wantAssertionsSigned: boolean;
  readonly clockSkewMs: number;
}

/**
 * IDP_DEFAULTS are the secure defaults, stated once: Okta signs both Response and Assertion by
 * default, so both are required; one minute of clock skew.
 */
export const IDP_DEFAULTS = {
  loginNameAttribute: 'NameID',
  displayNameAttribute: 'DisplayName',
  groupsAttribute: 'memberOf',
  departmentAttribute: 'Department',
  orgSpecificEntityId: false,
  signRequest: false,
  wantResponseSigned: true,
  wantAssertionsSigned: true,
  clockSkewMs: 60_000,
} as const;

/** IdpSettingsInput is IdpSettings before defaults. */
export type IdpSettingsInput = Omit<IdpSettings, keyof typeof IDP_DEFAULTS> & Partial<Pick<IdpSettings, keyof typeof IDP_DEFAULTS>>;

/** withIdpDefaults fills unset settings from IDP_DEFAULTS. */
export function withIdpDefaults(input: IdpSettingsInput): IdpSettings {
  const out: IdpSettings = { ...IDP_DEFAULTS, ...stripUndefined(input) } as IdpSettings;
  return Object.freeze(out);
}

/** spEntityId is our SP entity ID: `https://login.<cloud>/sfc_sso`, or `.../sfc_sso/<orgId>` when org-specific. */
export function spEntityId(cloud: string, orgId: string, orgSpecific: boolean): string {
  return orgSpecific ? `https://login.${cloud}/sfc_sso/${orgId}` : `https://login.${cloud}/sfc_sso`;
}

/**
 * defaultAcsUrl is where browsers POST responses: plain http through the proxy, as ZIA's ACS, or
 * https inside an inspected tunnel when `authentication.gatewayScheme` is https.
 */
export function defaultAcsUrl(cloud: string, scheme: 'http' | 'https' = 'http'): string {
  return `${scheme}://login.${cloud}/sfc_sso`;
}

/** SamlSpOptions builds one SP. */
export interface SamlSpOptions {
  readonly idp: IdpSettings;
  readonly cloud: string;
  readonly orgId: string;
  readonly store: Store;
  /** acsUrl defaults to defaultAcsUrl(cloud). */
  readonly acsUrl?: string;
  /** requestTtlMs is how long a login may take between AuthnRequest and response. Default 10 min. */
  readonly requestTtlMs?: number;
}

interface RequestRecord {
  readonly instant: string;
  readonly relayState: string;
}

const inflate = promisify(inflateRaw);

/** SamlSp is the service provider for one IdP; build it once, at activation. */
export class SamlSp {
  readonly idp: IdpSettings;
  readonly entityId: string;
  readonly acsUrl: string;
  private readonly store: Store;
  private readonly requestTtlMs: number;
  /** The options node-saml is built with, checked here; the client itself is built on first use (#client). */
  private readonly samlOptions: SamlConfig;
  #saml: SAML | null = null;
  /** policy holds the configured IdP certificate's key and what every response must match. */
  private readonly policy: ResponsePolicy;

  constructor(opts: SamlSpOptions) {
    const idp = opts.idp;
    if (idp.signRequest && (!idp.spKeyPem || !idp.spCertPem)) throw new Error(`IdP ${idp.id}: signRequest needs spKeyPem and spCertPem`);
    this.idp = idp;
    this.store = opts.store;
    this.entityId = spEntityId(opts.cloud, opts.orgId, idp.orgSpecificEntityId);
    this.acsUrl = opts.acsUrl ?? defaultAcsUrl(opts.cloud);
    this.requestTtlMs = opts.requestTtlMs ?? 10 * 60_000;
    this.policy = responsePolicy(idp, this.entityId, this.acsUrl);
    // node-saml only builds AuthnRequests and metadata here; it validates no response.
    this.samlOptions = {
      callbackUrl: this.acsUrl,
      entryPoint: idp.ssoUrl,
      issuer: this.entityId,
      idpCert: idp.idpCertPem.includes('-----BEGIN ') ? idp.idpCertPem.split(/(?<=-----END CERTIFICATE-----)/).map((p) => p.trim()).filter((p) => p !== '') : idp.idpCertPem,
      identifierFormat: NAMEID_EMAIL,
      // node-saml defaults to signing requests with sha1, which is too weak.
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      ...(idp.signRequest ? { privateKey: idp.spKeyPem!, publicCert: idp.spCertPem! } : {}),
      // WantAssertionsSigned in our metadata.
      wantAssertionsSigned: idp.wantAssertionsSigned,
      // Requests are recorded in the store by authorizeUrl, with their relay state; node-saml keeps none.
      validateInResponseTo: 'never' as SamlConfig['validateInResponseTo'],
      cacheProvider: { saveAsync: async () => null, getAsync: async () => null, removeAsync: async () => null },
      authnRequestBinding: 'HTTP-Redirect',
      // The IdP picks how to authenticate (password, MFA); an exact PasswordProtectedTransport
      // context (node-saml's default) makes Okta refuse MFA logins.
      disableRequestedAuthnContext: true,
    };
    if (!this.samlOptions.idpCert || (Array.isArray(this.samlOptions.idpCert) && this.samlOptions.idpCert.length === 0)) throw new Error(`IdP ${idp.id}: no IdP certificate`);
  }

  /**
   * #client is node-saml's SAML object, made on the first sign-in this process starts: the SAML
   * libraries are the control plane's, and a data-plane worker that never starts one never loads them.
   */
  #client(): SAML {
    if (this.#saml === null) {
      const { SAML } = createRequire(import.meta.url)('@node-saml/node-saml') as typeof import('@node-saml/node-saml');
      this.#saml = new SAML(this.samlOptions);
    }
    return this.#saml;
  }

  /**
   * authorizeUrl builds the HTTP-Redirect URL of a new AuthnRequest (SAML Core §3.4.1) and records
   * its ID in the shared store for requestTtlMs, bound to relayStateId, so any node can finish it.
   */
  async authorizeUrl(relayStateId: string): Promise<{ url: string; requestId: string }> {
    const url = await this.#client().getAuthorizeUrlAsync(relayStateId, undefined, {});
    const deflated = new URL(url).searchParams.get('SAMLRequest') ?? '';
    const request = parseSamlXml((await inflate(Buffer.from(deflated, 'base64'))).toString('utf8')).documentElement;
    const requestId = request.getAttribute('ID') ?? '';
    if (requestId === '') throw new Error('node-saml built an AuthnRequest without ID');
    const record: RequestRecord = { instant: new Date().toISOString(), relayState: relayStateId };
    await this.store.set(this.requestKey(requestId), JSON.stringify(record), this.requestTtlMs);
    return { url, requestId };
  }

  /**
   * validate checks a POSTed SAMLResponse (SAML Bindings §3.5, Profiles §4.1.4.3) and returns the
   * identity, or throws SamlError. The request ID and assertion ID are used up only when every
   * check has passed.
   */
  async validate(samlResponseB64: string, relayState: string): Promise<SamlIdentity> {
    const read = readResponse(samlResponseB64, this.policy);
    await this.checkOpenRequest(read.env);
    const { identity, inResponseTo, replayTtlMs } = verifyResponse(read, this.policy, Date.now());

    // One-time use. The assertion record is written first, so that any validation that finds the
    // request already consumed also finds the assertion recorded and reports a replay.
    if (!(await this.store.createIfAbsent(assertionKey(identity.assertionId), this.idp.id, replayTtlMs))) {
      throw new SamlError('SAML_REPLAY', `assertion ${identity.assertionId} was already used`);
    }
    const raw = await this.store.consume(this.requestKey(inResponseTo));
    if (raw === null) throw new SamlError('SAML_REPLAY', `request ${inResponseTo} was consumed by another validation`);
    const record = JSON.parse(raw) as RequestRecord;
    if (record.relayState !== relayState) {
      throw new SamlError('SAML_RELAY_STATE', `RelayState ${JSON.stringify(relayState)} is not the one request ${inResponseTo} was sent with`);
    }
    return identity;
  }

  /** spMetadataXml is our SP metadata (SAML Metadata §2.4.4), ready to paste into the IdP. */
  spMetadataXml(): string {
    return this.#client().generateServiceProviderMetadata(null, this.idp.signRequest ? this.idp.spCertPem! : null);
  }

  /**
   * checkOpenRequest refuses, before any crypto, a response that answers no open request of this
   * IdP (SAML Profiles §4.1.4.3): no InResponseTo (IdP-initiated), unknown, expired, or already
   * consumed, which is a replay when the assertion was recorded as used.
   */
  private async checkOpenRequest(env: ResponseEnvelope): Promise<void> {
    if (env.inResponseTo === null) throw new SamlError('SAML_IN_RESPONSE_TO', 'the Response has no InResponseTo');
    const raw = await this.store.get(this.requestKey(env.inResponseTo));
    if (raw === null) {
      // The assertion ID is unverified here: it only picks which refusal to report.
      const ids = env.assertions.map((a) => a.getAttribute('ID') ?? '').filter(Boolean);
      const seen = await Promise.all(ids.map((id) => this.store.get(assertionKey(id))));
      throw seen.some((v) => v !== null)
        ? new SamlError('SAML_REPLAY', `request ${env.inResponseTo} was already used`)
        : new SamlError('SAML_IN_RESPONSE_TO', `InResponseTo ${env.inResponseTo} names no open request of IdP ${this.idp.id}`);
    }
    const started = Date.parse((JSON.parse(raw) as RequestRecord).instant);
    if (!(Date.now() < started + this.requestTtlMs)) {
      throw new SamlError('SAML_IN_RESPONSE_TO', `request ${env.inResponseTo} is older than ${this.requestTtlMs} ms`);
    }
  }

  private requestKey(requestId: string): string {
    return `{saml}:request:${this.idp.id}:${requestId}`;
  }
}

/**
 * responsePolicy is what an SP with this entity ID and ACS URL holds every response of `idp` to;
 * with samlresponse's checkResponse it validates a response without any store.
 */
export function responsePolicy(idp: IdpSettings, entityId: string, acsUrl: string): ResponsePolicy {
  const expect: Expect = { idpEntityId: idp.idpEntityId, spEntityId: entityId, acsUrl, skewMs: idp.clockSkewMs };
  return Object.freeze({
    keys: idpPublicKeys(idp),
    expect,
    wantResponseSigned: idp.wantResponseSigned,
    wantAssertionsSigned: idp.wantAssertionsSigned,
    loginNameAttribute: idp.loginNameAttribute,
    displayNameAttribute: idp.displayNameAttribute,
    groupsAttribute: idp.groupsAttribute,
    departmentAttribute: idp.departmentAttribute,
  });
}

/**
 * idpPublicKeys reads the configured certificates once, at activation: PEM (one block or several, as
 * during a rollover), or one bare base64 certificate as node-saml also takes it.
 */
function idpPublicKeys(idp: IdpSettings): KeyObject[] {
  const text = idp.idpCertPem.trim();
  const pems = text.includes('-----BEGIN ')
    ? (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [text])
    : [`-----BEGIN CERTIFICATE-----\n${(text.replace(/\s+/g, '').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`];
  try {
    return pems.map((pem) => createPublicKey(pem));
  } catch (err) {
    throw new Error(`IdP ${idp.id}: the IdP certificate could not be read`, { cause: err });
  }
}

function assertionKey(id: string): string {
  return `{saml}:assertion:${id}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
