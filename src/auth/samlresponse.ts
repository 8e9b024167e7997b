/**
 * samlresponse: one POSTed SAML Response checked end to end, less what needs the shared store.
 *
 *   readResponse(b64, policy)            parse (samlxml, DTDs refused), Status, wanted signatures present
 *   verifyResponse(read, policy, now)    every signature (xmldsig), the Assertion from signed bytes only,
 *                                        Issuer, Destination, Recipient, InResponseTo, Audience, times
 *                                        (samlcheck), the identity
 *
 * Pure and IO-free, so it can be held against another validator and fuzzed on its own. SamlSp.validate
 * runs the store's checks around it: the open request between the two (before any crypto), one-time
 * use of request and assertion after.
 */
import type { KeyObject } from 'node:crypto';
import { checkSignedWhereWanted, checkStatus, checkVerified, replayTtlMs, type Expect } from './samlcheck.js';
import { SamlError } from './samlerror.js';
import { NS_ASSERTION, NS_DSIG, children, decodeSamlPost, parseSamlXml, readAssertion, readEnvelope, type ResponseEnvelope } from './samlxml.js';
import { verifyEnvelopedSignature } from './xmldsig.js';

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

/** ResponsePolicy is what one IdP's responses must satisfy, fixed when its SP is built. */
export interface ResponsePolicy {
  /** keys are the public keys of the configured IdP certificates (two during a rollover), the only keys a signature may verify with. */
  readonly keys: readonly KeyObject[];
  readonly expect: Expect;
  readonly wantResponseSigned: boolean;
  readonly wantAssertionsSigned: boolean;
  /** loginNameAttribute is `NameID` or an attribute name (case-sensitive); the others name attributes. */
  readonly loginNameAttribute: string;
  readonly displayNameAttribute: string;
  readonly groupsAttribute: string;
  readonly departmentAttribute: string;
}

/** ReadResponse is a parsed Response whose Status and signature presence have been checked, nothing more. */
export interface ReadResponse {
  readonly doc: Document;
  /** env is untrusted until verifyResponse has checked the signatures. */
  readonly env: ResponseEnvelope;
}

/** VerifiedResponse is what a response proves once every check but the store's has passed. */
export interface VerifiedResponse {
  readonly identity: SamlIdentity;
  /** inResponseTo is the request the Response answers (checked present and equal to every bearer confirmation's). */
  readonly inResponseTo: string;
  /** attributes are every attribute of the signed assertion, values in document order, empty values left out. */
  readonly attributes: ReadonlyMap<string, readonly string[]>;
  /** replayTtlMs is how long the assertion's one-time record must be kept. */
  readonly replayTtlMs: number;
}

/** readResponse decodes and parses a SAMLResponse form field and refuses, before any crypto, what cannot pass. */
export function readResponse(samlResponseB64: string, policy: ResponsePolicy): ReadResponse {
  const doc = parseSamlXml(decodeSamlPost(samlResponseB64));
  const env = readEnvelope(doc);
  checkStatus(env);
  checkSignedWhereWanted(env, { response: policy.wantResponseSigned, assertions: policy.wantAssertionsSigned });
  return { doc, env };
}

/**
 * verifyResponse verifies every signature of a read response and reads the identity from the signed
 * bytes only (the defence against signature wrapping), or throws SamlError.
 */
export function verifyResponse(read: ReadResponse, policy: ResponsePolicy, now: number): VerifiedResponse {
  const a = readAssertion(verifiedAssertion(read.doc.documentElement, read.env, policy.keys));
  checkVerified(read.env, a, policy.expect, now);
  const first = (name: string): string => a.attributes.get(name)?.[0] ?? '';
  const loginName = policy.loginNameAttribute === 'NameID' ? a.nameId : first(policy.loginNameAttribute);
  if (loginName === '') throw new SamlError('SAML_NO_LOGIN_NAME', `no value for login name attribute ${policy.loginNameAttribute}`);
  const ends = [...(a.notOnOrAfter === null ? [] : [a.notOnOrAfter]), ...a.confirmationNotOnOrAfter];
  return {
    identity: {
      loginName,
      displayName: first(policy.displayNameAttribute),
      groups: [...(a.attributes.get(policy.groupsAttribute) ?? [])],
      department: first(policy.departmentAttribute),
      sessionIndex: a.sessionIndex,
      assertionId: a.id,
      notOnOrAfter: Math.min(...ends),
      issuer: a.issuer,
    },
    // checkVerified has refused a Response without InResponseTo.
    inResponseTo: read.env.inResponseTo ?? '',
    attributes: a.attributes,
    replayTtlMs: replayTtlMs(a, now, policy.expect.skewMs),
  };
}

/** checkResponse is readResponse then verifyResponse, for a caller that keeps no request state. */
export function checkResponse(samlResponseB64: string, policy: ResponsePolicy, now: number): VerifiedResponse {
  return verifyResponse(readResponse(samlResponseB64, policy), policy, now);
}

/**
 * verifiedAssertion verifies every signature the response carries (each one present must hold;
 * checkSignedWhereWanted has made sure the wanted ones are present) and returns the one Assertion
 * parsed again from signed bytes: its own signature's when it is signed, else the Response's.
 */
function verifiedAssertion(root: Element, env: ResponseEnvelope, key: readonly KeyObject[]): Element {
  const assertion = env.assertions[0];
  if (assertion === undefined || env.assertions.length !== 1) throw new SamlError('SAML_MALFORMED', 'the Response does not carry one Assertion');
  const responseXml = env.signed ? verifyEnvelopedSignature(root, key) : null;
  const assertionXml = children(assertion, NS_DSIG, 'Signature').length > 0 ? verifyEnvelopedSignature(assertion, key) : null;
  const signedXml = assertionXml ?? responseXml;
  if (signedXml === null) throw new SamlError('SAML_UNSIGNED', 'neither the Response nor the Assertion is signed');
  const signed = parseSamlXml(signedXml).documentElement;
  const found = signed.localName === 'Assertion' ? [signed] : children(signed, NS_ASSERTION, 'Assertion');
  if (found.length !== 1 || found[0]!.namespaceURI !== NS_ASSERTION) throw new SamlError('SAML_MALFORMED', 'the signed XML does not hold one Assertion');
  return found[0]!;
}
