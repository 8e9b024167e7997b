/**
 * SCIM errors: one typed error that every SCIM module throws, and the one function that renders it.
 *
 *   filter / patch / attributes -> throw ScimError -> server adapter -> toScimErrorBody -> client
 *
 * The body shape is RFC 7644 §3.12: the Error message schema, `status` as a string, a `scimType` where the
 * RFC defines one, and a human-readable `detail`. Details are written for the client (they name the
 * attribute or the position in a filter) and never carry internal error text.
 */

/** SCIM_ERROR_SCHEMA is the message schema URN of every SCIM error body (RFC 7644 §3.12). */
export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** ScimType is the closed set of `scimType` keywords of RFC 7644 §3.12, Table 9. */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/** ScimErrorBody is the JSON rendering of an error (RFC 7644 §3.12). */
export interface ScimErrorBody {
  schemas: [typeof SCIM_ERROR_SCHEMA];
  status: string;
  scimType?: ScimType;
  detail?: string;
}

/**
 * ScimError is a client-facing SCIM failure: an HTTP status, an optional RFC 7644 §3.12 `scimType` and a
 * detail that is safe to show to the client. Code branches on `status` and `scimType`, never on the text.
 */
export class ScimError extends Error {
  readonly status: number;
  readonly scimType: ScimType | undefined;
  readonly detail: string;

  constructor(status: number, scimType: ScimType | undefined, detail: string) {
    super(detail);
    this.name = 'ScimError';
    this.status = status;
    this.scimType = scimType;
    this.detail = detail;
  }
}

/** badRequest builds the common 400 ScimError with a scimType. */
export function badRequest(scimType: ScimType, detail: string): ScimError {
  return new ScimError(400, scimType, detail);
}

/**
 * toScimErrorBody renders any thrown value as an RFC 7644 §3.12 error body. A ScimError keeps its status,
 * scimType and detail; anything else becomes a 500 with a fixed detail, so internal messages never leak.
 */
export function toScimErrorBody(err: unknown): ScimErrorBody {
  if (err instanceof ScimError) {
    const body: ScimErrorBody = { schemas: [SCIM_ERROR_SCHEMA], status: String(err.status) };
    if (err.scimType !== undefined) body.scimType = err.scimType;
    body.detail = err.detail;
    return body;
  }
  return { schemas: [SCIM_ERROR_SCHEMA], status: '500', detail: 'internal server error' };
}
