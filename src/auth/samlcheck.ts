/**
 * samlcheck: the checks Tollgate makes on a SAML Response besides its signatures, as small pure functions.
 *
 * Each one throws a SamlError with a stable code, or returns. They run on facts read by samlxml:
 * before signature verification on the (untrusted) envelope, to refuse early and to pick the code
 * of a refusal, and after it on the verified assertion and a signed envelope (`checkVerified`).
 */
import { SamlError } from './samlerror.js';
import { children, NS_DSIG, STATUS_SUCCESS, type AssertionFacts, type ResponseEnvelope } from './samlxml.js';

/** Expect is what a response must match, fixed when the SP is built. */
export interface Expect {
  readonly idpEntityId: string;
  readonly spEntityId: string;
  readonly acsUrl: string;
  readonly skewMs: number;
}

/** checkStatus: the top-level StatusCode must be Success (SAML Core §3.2.2.2). */
export function checkStatus(env: ResponseEnvelope): void {
  if (env.statusCode !== STATUS_SUCCESS) {
    throw new SamlError('SAML_STATUS', `Status is ${env.statusCode || '(none)'}${env.statusDetail ? ` (${env.statusDetail})` : ''}`);
  }
}

/**
 * checkSignedWhereWanted refuses a response that carries no signature where the IdP is configured
 * to sign, before any crypto runs; whether a present signature is good is xmldsig's verdict.
 */
export function checkSignedWhereWanted(env: ResponseEnvelope, want: { response: boolean; assertions: boolean }): void {
  // SAML Profiles §4.1.4.2 allows several assertions, but no IdP we support sends them, and an
  // extra one is the classic signature-wrapping shape (node-saml refuses it the same way).
  if (env.assertions.length > 1) throw new SamlError('SAML_SIGNATURE', `${env.assertions.length} Assertion elements in the Response (signature wrapping?)`);
  if (env.assertions.length === 0) throw new SamlError('SAML_MALFORMED', 'the Response carries no Assertion');
  const assertionSigned = env.assertions.length > 0 && env.assertions.every((a) => children(a, NS_DSIG, 'Signature').length > 0);
  // A signature belongs on the Response or the Assertion, nowhere else (SAML Core §5.4.1). One
  // anywhere else (in a KeyInfo, an Extensions, a Subject) verifies nothing we read, and is where
  // wrapping attacks park the original; xml-crypto counts its Transforms into the enclosing one.
  if (env.signaturesElsewhere > 0) {
    throw new SamlError('SAML_SIGNATURE', `${env.signaturesElsewhere} ds:Signature elements outside the Response and Assertion (signature wrapping?)`);
  }
  if (want.response && !env.signed) throw new SamlError('SAML_UNSIGNED', 'the Response carries no Signature and the IdP is configured to sign it');
  if (want.assertions && !assertionSigned) throw new SamlError('SAML_UNSIGNED', 'the Assertion carries no Signature and the IdP is configured to sign it');
  if (!env.signed && !assertionSigned) throw new SamlError('SAML_UNSIGNED', 'neither the Response nor the Assertion is signed');
}

/**
 * checkTime: Conditions NotBefore/NotOnOrAfter and the bearer NotBefore/NotOnOrAfter, within skew
 * (SAML Core §2.5.1.2, §2.4.1.2).
 */
export function checkTime(a: AssertionFacts, now: number, skewMs: number): void {
  for (const start of [...(a.notBefore === null ? [] : [a.notBefore]), ...a.confirmationNotBefore]) {
    if (now + skewMs < start) throw new SamlError('SAML_NOT_YET_VALID', `NotBefore ${iso(start)} is after now ${iso(now)} + skew ${skewMs} ms`);
  }
  const ends = [...(a.notOnOrAfter === null ? [] : [a.notOnOrAfter]), ...a.confirmationNotOnOrAfter];
  for (const end of ends) {
    if (now - skewMs >= end) throw new SamlError('SAML_EXPIRED', `NotOnOrAfter ${iso(end)} is not after now ${iso(now)} - skew ${skewMs} ms`);
  }
}

/** checkInResponseTo: each bearer confirmation answers the request the Response answers (SAML Profiles §4.1.4.2). */
export function checkInResponseTo(env: ResponseEnvelope, a: AssertionFacts): void {
  if (env.inResponseTo === null || !a.confirmationInResponseTo.every((id) => id === env.inResponseTo)) {
    throw new SamlError(
      'SAML_IN_RESPONSE_TO',
      `SubjectConfirmationData InResponseTo ${JSON.stringify(a.confirmationInResponseTo)} does not match the Response's ${JSON.stringify(env.inResponseTo)}`,
    );
  }
}

/**
 * checkAudience: there is an AudienceRestriction, and each one names our SP entity ID (SAML Core
 * §2.5.1.4: Audiences within one restriction are alternatives, several restrictions all apply).
 */
export function checkAudience(a: AssertionFacts, spEntityId: string): void {
  if (a.audienceRestrictions.length === 0) throw new SamlError('SAML_AUDIENCE', 'the Assertion has no AudienceRestriction');
  for (const audiences of a.audienceRestrictions) {
    if (!audiences.includes(spEntityId)) {
      throw new SamlError('SAML_AUDIENCE', `Audience ${JSON.stringify(audiences)} does not include ${spEntityId}`);
    }
  }
}

/**
 * checkVerified runs our checks on verified data: the assertion read from signed bytes, and the
 * envelope (covered by the Response signature when the IdP signs responses).
 */
export function checkVerified(env: ResponseEnvelope, a: AssertionFacts, x: Expect, now: number): void {
  // SAML Core §2.2.5 / §3.2.2: the Issuer of Response (optional there) and Assertion is the IdP.
  if (env.issuer !== null && env.issuer !== x.idpEntityId) {
    throw new SamlError('SAML_ISSUER', `Response Issuer ${JSON.stringify(env.issuer)} is not ${x.idpEntityId}`);
  }
  if (a.issuer !== x.idpEntityId) throw new SamlError('SAML_ISSUER', `Assertion Issuer ${JSON.stringify(a.issuer)} is not ${x.idpEntityId}`);
  // SAML Core §3.2.2 and Profiles §4.1.4.5: a signed response must carry Destination, our ACS URL.
  if (env.destination !== x.acsUrl) {
    throw new SamlError('SAML_DESTINATION', `Destination ${JSON.stringify(env.destination)} is not ${x.acsUrl}`);
  }
  // SAML Profiles §4.1.4.2: a bearer SubjectConfirmationData has Recipient = ACS URL and NotOnOrAfter.
  if (a.recipients.length === 0) throw new SamlError('SAML_RECIPIENT', 'no bearer SubjectConfirmation');
  if (!a.recipients.every((r) => r === x.acsUrl)) {
    throw new SamlError('SAML_RECIPIENT', `Recipient ${JSON.stringify(a.recipients)} is not ${x.acsUrl}`);
  }
  if (a.confirmationNotOnOrAfter.length !== a.recipients.length) {
    throw new SamlError('SAML_MALFORMED', 'a bearer SubjectConfirmationData has no NotOnOrAfter');
  }
  checkInResponseTo(env, a);
  checkAudience(a, x.spEntityId);
  checkTime(a, now, x.skewMs);
  if (a.id === '') throw new SamlError('SAML_MALFORMED', 'the Assertion has no ID');
}

/** replayTtlMs keeps an assertion's one-time record until it could no longer be accepted anyway. */
export function replayTtlMs(a: AssertionFacts, now: number, skewMs: number): number {
  const ends = [...(a.notOnOrAfter === null ? [] : [a.notOnOrAfter]), ...a.confirmationNotOnOrAfter];
  return Math.max(1_000, Math.max(...ends) + skewMs - now);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
