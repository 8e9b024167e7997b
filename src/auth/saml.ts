/**
 * saml: Tollgate's SAML 2.0 service provider, one SamlSp per configured IdP, built at activation.
 *
 *   browser -> gateway -> SamlSp.authorizeUrl -> IdP (HTTP-Redirect, SAML Bindings §3.4)
 *   IdP -> browser -> POST http://login.<cloud>/sfc_sso -> SamlSp.validate -> SamlIdentity
 *
 * node-saml (@node-saml/node-saml) builds AuthnRequests and our metadata. A response is parsed
 * once (samlxml, DTDs refused); xmldsig verifies its signatures against the configured certificate
 * and hands back the signed bytes, the only ones read for the identity; samlcheck checks Status,
 * InResponseTo, Issuer, Destination, Recipient, times and audience. The request ID and the
 * assertion ID are consumed once each, atomically in the shared store, so a response is accepted
 * once even when posted to several nodes at the same instant.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import type { Store } from '../sessions/store.js';
import { checkSignedWhereWanted, checkStatus, checkVerified, replayTtlMs, type Expect } from './samlcheck.js';
import { SamlError } from './samlerror.js';
import { NAMEID_EMAIL, NS_ASSERTION, NS_DSIG, children, decodeSamlPost, parseSamlXml, readAssertion, readEnvelope, type ResponseEnvelope } from './samlxml.js';
import { verifyEnvelopedSignature } from './xmldsig.js';

export { SamlError, type SamlErrorCode } from './samlerror.js';

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

/** defaultAcsUrl is where browsers POST responses: plain http through the proxy, as ZIA's ACS. */
export function defaultAcsUrl(cloud: string): string {
  return `http://login.${cloud}/sfc_sso`;
}

/** SamlIdentity is who signed in, read from the verified assertion only. */
export interface SamlIdentity {
  readonly loginName: string;
  readonly displayName: string;
  readonly groups: readonly string[];
  readonly department: string;
  readonly sessionIndex: string;
  readonly assertionId: string;
  /** notOnOrAfter is the earliest NotOnOrAfter of the assertion, in epoch ms. */
  readonly notOnOrAfter: number;
  readonly issuer: string;
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
  private readonly saml: SAML;
  private readonly expect: Expect;
  /** idpKeys are the public keys of the configured IdP certificates (two during a rollover), the only keys a signature may verify with. */
  private readonly idpKeys: readonly KeyObject[];

  constructor(opts: SamlSpOptions) {
    const idp = opts.idp;
    if (idp.signRequest && (!idp.spKeyPem || !idp.spCertPem)) throw new Error(`IdP ${idp.id}: signRequest needs spKeyPem and spCertPem`);
    this.idp = idp;
    this.store = opts.store;
    this.entityId = spEntityId(opts.cloud, opts.orgId, idp.orgSpecificEntityId);
    this.acsUrl = opts.acsUrl ?? defaultAcsUrl(opts.cloud);
    this.requestTtlMs = opts.requestTtlMs ?? 10 * 60_000;
    this.expect = { idpEntityId: idp.idpEntityId, spEntityId: this.entityId, acsUrl: this.acsUrl, skewMs: idp.clockSkewMs };
    this.idpKeys = idpPublicKeys(idp);
    // node-saml only builds AuthnRequests and metadata here; it validates no response.
    this.saml = new SAML({
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
      validateInResponseTo: ValidateInResponseTo.never,
      cacheProvider: { saveAsync: async () => null, getAsync: async () => null, removeAsync: async () => null },
      authnRequestBinding: 'HTTP-Redirect',
      // The IdP picks how to authenticate (password, MFA); an exact PasswordProtectedTransport
      // context (node-saml's default) makes Okta refuse MFA logins.
      disableRequestedAuthnContext: true,
    });
  }

  /**
   * authorizeUrl builds the HTTP-Redirect URL of a new AuthnRequest (SAML Core §3.4.1) and records
   * its ID in the shared store for requestTtlMs, bound to relayStateId, so any node can finish it.
   */
  async authorizeUrl(relayStateId: string): Promise<{ url: string; requestId: string }> {
    const url = await this.saml.getAuthorizeUrlAsync(relayStateId, undefined, {});
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
    const doc = parseSamlXml(decodeSamlPost(samlResponseB64));
    const env = readEnvelope(doc);
    checkStatus(env);
    checkSignedWhereWanted(env, { response: this.idp.wantResponseSigned, assertions: this.idp.wantAssertionsSigned });
    await this.checkOpenRequest(env);

    // Only signed bytes are read from here on (defence against signature wrapping).
    const a = readAssertion(this.verifiedAssertion(doc.documentElement, env));
    const now = Date.now();
    checkVerified(env, a, this.expect, now);

    // One-time use. The assertion record is written first, so that any validation that finds the
    // request already consumed also finds the assertion recorded and reports a replay.
    const inResponseTo = env.inResponseTo ?? '';
    if (!(await this.store.createIfAbsent(assertionKey(a.id), this.idp.id, replayTtlMs(a, now, this.idp.clockSkewMs)))) {
      throw new SamlError('SAML_REPLAY', `assertion ${a.id} was already used`);
    }
    const raw = await this.store.consume(this.requestKey(inResponseTo));
    if (raw === null) throw new SamlError('SAML_REPLAY', `request ${inResponseTo} was consumed by another validation`);
    const record = JSON.parse(raw) as RequestRecord;
    if (record.relayState !== relayState) {
      throw new SamlError('SAML_RELAY_STATE', `RelayState ${JSON.stringify(relayState)} is not the one request ${inResponseTo} was sent with`);
    }

    const first = (name: string): string => a.attributes.get(name)?.[0] ?? '';
    const loginName = this.idp.loginNameAttribute === 'NameID' ? a.nameId : first(this.idp.loginNameAttribute);
    if (loginName === '') throw new SamlError('SAML_NO_LOGIN_NAME', `no value for login name attribute ${this.idp.loginNameAttribute}`);
    const ends = [...(a.notOnOrAfter === null ? [] : [a.notOnOrAfter]), ...a.confirmationNotOnOrAfter];
    return {
      loginName,
      displayName: first(this.idp.displayNameAttribute),
      groups: [...(a.attributes.get(this.idp.groupsAttribute) ?? [])],
      department: first(this.idp.departmentAttribute),
      sessionIndex: a.sessionIndex,
      assertionId: a.id,
      notOnOrAfter: Math.min(...ends),
      issuer: a.issuer,
    };
  }

  /** spMetadataXml is our SP metadata (SAML Metadata §2.4.4), ready to paste into the IdP. */
  spMetadataXml(): string {
    return this.saml.generateServiceProviderMetadata(null, this.idp.signRequest ? this.idp.spCertPem! : null);
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

  /**
   * verifiedAssertion verifies every signature the response carries (each one present must hold,
   * checkSignedWhereWanted has made sure the wanted ones are present) and returns the one Assertion
   * parsed again from signed bytes: its own signature's when it is signed, else the Response's.
   */
  private verifiedAssertion(root: Element, env: ResponseEnvelope): Element {
    const assertion = env.assertions[0];
    if (assertion === undefined || env.assertions.length !== 1) throw new SamlError('SAML_MALFORMED', 'the Response does not carry one Assertion');
    const responseXml = env.signed ? verifyEnvelopedSignature(root, this.idpKeys) : null;
    const assertionXml = children(assertion, NS_DSIG, 'Signature').length > 0 ? verifyEnvelopedSignature(assertion, this.idpKeys) : null;
    const signedXml = assertionXml ?? responseXml;
    if (signedXml === null) throw new SamlError('SAML_UNSIGNED', 'neither the Response nor the Assertion is signed');
    const signed = parseSamlXml(signedXml).documentElement;
    const found = signed.localName === 'Assertion' ? [signed] : children(signed, NS_ASSERTION, 'Assertion');
    if (found.length !== 1 || found[0]!.namespaceURI !== NS_ASSERTION) throw new SamlError('SAML_MALFORMED', 'the signed XML does not hold one Assertion');
    return found[0]!;
  }

  private requestKey(requestId: string): string {
    return `{saml}:request:${this.idp.id}:${requestId}`;
  }
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
