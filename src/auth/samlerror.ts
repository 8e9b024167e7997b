/**
 * samlerror: the catalogue of SAML login failures.
 *
 * Each failure has a stable code, a status and a one-line hint that the ACS error page shows; the
 * precise reason (what differed, node-saml's own message) goes only to the log. In the spirit of
 * ZIA's SAML error codes, the hint tells an admin where to look without leaking internals.
 */
import { HttpError } from '../http/errors.js';

/** SAML_ERRORS maps each code to its status and the hint a user sees. */
export const SAML_ERRORS = {
  SAML_MALFORMED: [400, 'The sign-in response from your identity provider could not be read.'],
  SAML_DOCTYPE: [400, 'The sign-in response contained a forbidden XML construct (DOCTYPE or entity).'],
  SAML_UNSIGNED: [403, 'The sign-in response was not signed by your identity provider.'],
  SAML_SIGNATURE: [403, "The sign-in response's signature does not match the identity provider's certificate."],
  SAML_ISSUER: [403, 'The sign-in response came from an identity provider that is not configured here.'],
  SAML_DESTINATION: [403, 'The sign-in response was addressed to another service; check the ACS URL in your IdP.'],
  SAML_RECIPIENT: [403, 'The sign-in assertion names another recipient; check the ACS URL in your IdP.'],
  SAML_AUDIENCE: [403, 'The sign-in assertion is meant for another service provider; check the SP entity ID in your IdP.'],
  SAML_STATUS: [403, 'Your identity provider reported that the sign-in failed.'],
  SAML_EXPIRED: [403, 'The sign-in response has expired; check the clocks of the IdP and this service, then sign in again.'],
  SAML_NOT_YET_VALID: [403, 'The sign-in response is not valid yet; the clocks of the IdP and this service differ too much.'],
  SAML_IN_RESPONSE_TO: [403, 'This sign-in was not started here, or it took too long; please sign in again.'],
  SAML_RELAY_STATE: [403, 'This sign-in response does not belong to the sign-in started here; please sign in again.'],
  SAML_REPLAY: [403, 'This sign-in response was already used; please sign in again.'],
  SAML_NO_LOGIN_NAME: [403, 'Your identity provider did not send a login name for this user.'],
  SAML_OTHER_CLIENT: [403, 'This sign-in was started from another device or network; please sign in again from here.'],
  SAML_DOMAIN_NOT_MAPPED: [403, "Your login name's domain is not mapped to this identity provider; ask your admin to add it."],
  SAML_UNKNOWN_USER: [403, 'Your user is not provisioned here; ask your admin to assign you to the app in your IdP.'],
  SAML_INACTIVE_USER: [403, 'Your user is deactivated here; ask your admin to reactivate you.'],
} as const satisfies Record<string, readonly [number, string]>;

/** SamlErrorCode is one stable code of the catalogue. */
export type SamlErrorCode = keyof typeof SAML_ERRORS;

/**
 * SamlError is a refused SAML response. `message` is the user-facing hint (HttpError renders it);
 * `reason` is the precise cause for the log and must never be shown to the user.
 */
export class SamlError extends HttpError {
  override readonly code: SamlErrorCode;
  readonly hint: string;
  readonly reason: string;

  constructor(code: SamlErrorCode, reason: string, options?: { cause?: unknown }) {
    const [status, hint] = SAML_ERRORS[code];
    super(status, code, hint);
    this.name = 'SamlError';
    this.code = code;
    this.hint = hint;
    this.reason = reason;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
