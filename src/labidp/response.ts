/**
 * response: the unsigned Response + Assertion XML the lab IdP hands to samlify for signing.
 * NOT FOR PRODUCTION.
 *
 * It is shaped like Okta's: Issuer on both, Destination and InResponseTo on the Response, a bearer
 * SubjectConfirmation with Recipient/NotOnOrAfter/InResponseTo (SAML Profiles §4.1.4.2), Conditions
 * with NotBefore/NotOnOrAfter and one Audience (SAML Core §2.5), and the attributes DisplayName,
 * memberOf (one AttributeValue per group, none when there are no groups) and Department.
 */
import { randomBytes } from 'node:crypto';
import type { LabUser } from './users.js';

/** LoginResponseInput is everything one response says. */
export interface LoginResponseInput {
  readonly idpEntityId: string;
  readonly spEntityId: string;
  readonly acsUrl: string;
  readonly inResponseTo: string;
  readonly user: LabUser;
  /** now is the IdP's (possibly shifted) clock, epoch ms. */
  readonly now: number;
  readonly lifetimeMs: number;
}

const XML_ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
/** esc makes text safe inside XML element content and quoted attributes. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => XML_ESC[c]!);
}

function newId(): string {
  // SAML Core §1.3.4: an xs:ID must not start with a digit, and must be unguessable.
  return '_' + randomBytes(20).toString('hex');
}

/** buildLoginResponseXml returns the Response XML and its ID. */
export function buildLoginResponseXml(i: LoginResponseInput): { id: string; assertionId: string; xml: string } {
  const id = newId();
  const assertionId = newId();
  const t = (ms: number): string => new Date(ms).toISOString();
  const now = t(i.now);
  // Okta backdates NotBefore a little for clock skew; so do we.
  const notBefore = t(i.now - 5_000);
  const notOnOrAfter = t(i.now + i.lifetimeMs);
  const attribute = (name: string, values: readonly string[]): string =>
    values.length === 0
      ? ''
      : `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">` +
        values.map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`).join('') +
        `</saml:Attribute>`;
  const attrs =
    attribute('DisplayName', i.user.displayName ? [i.user.displayName] : []) +
    attribute('memberOf', i.user.groups) +
    attribute('Department', i.user.department ? [i.user.department] : []);
  const xml =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ` +
    `ID="${id}" Version="2.0" IssueInstant="${now}" Destination="${esc(i.acsUrl)}" InResponseTo="${esc(i.inResponseTo)}">` +
    `<saml:Issuer>${esc(i.idpEntityId)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    `<saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ` +
    `ID="${assertionId}" Version="2.0" IssueInstant="${now}">` +
    `<saml:Issuer>${esc(i.idpEntityId)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${esc(i.user.loginName)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
    `<saml:SubjectConfirmationData InResponseTo="${esc(i.inResponseTo)}" NotOnOrAfter="${notOnOrAfter}" Recipient="${esc(i.acsUrl)}"/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}">` +
    `<saml:AudienceRestriction><saml:Audience>${esc(i.spEntityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${now}" SessionIndex="${assertionId}"><saml:AuthnContext>` +
    `<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>` +
    `</saml:AuthnContext></saml:AuthnStatement>` +
    (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
    `</saml:Assertion></samlp:Response>`;
  return { id, assertionId, xml };
}
