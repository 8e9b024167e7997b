/**
 * discovery: the SCIM discovery documents, built once from the attribute tables (RFC 7644 §4).
 *
 *   GET <base>/ServiceProviderConfig | /ResourceTypes[/User] | /Schemas[/<urn>] -> these, plus meta.location
 *
 * The documents say what the server does: PATCH and filters (with maxResults) yes; bulk, changePassword
 * and sort no; ETags yes (meta.version and the ETag header; If-Match, and If-None-Match with 304 on a GET);
 * authentication by OAuth bearer token.
 */
import {
  ENTERPRISE_USER_SCHEMA,
  GROUP_RESOURCE,
  GROUP_SCHEMA,
  USER_RESOURCE,
  USER_SCHEMA,
  type AttrDef,
  type ResourceTypeDef,
  type SchemaDef,
} from './attributes.js';

/** MAX_RESULTS is filter.maxResults: the most resources one list response carries (RFC 7644 §3.4.2.4). */
export const MAX_RESULTS = 200;

const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';

/** Doc is a discovery document without its meta.location. */
export type Doc = Readonly<Record<string, unknown>>;

/** SERVICE_PROVIDER_CONFIG is RFC 7643 §5. */
export const SERVICE_PROVIDER_CONFIG: Doc = {
  schemas: [SPC_SCHEMA],
  patch: { supported: true },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: MAX_RESULTS },
  changePassword: { supported: false },
  sort: { supported: false },
  etag: { supported: true },
  authenticationSchemes: [
    {
      type: 'oauthbearertoken',
      name: 'OAuth Bearer Token',
      description: 'The per-IdP token from "Generate Token", sent as Authorization: Bearer <token> (RFC 6750).',
      specUri: 'https://www.rfc-editor.org/rfc/rfc6750',
      primary: true,
    },
  ],
  meta: { resourceType: 'ServiceProviderConfig' },
};

function resourceType(rt: ResourceTypeDef, description: string): Doc {
  return {
    schemas: [RESOURCE_TYPE_SCHEMA],
    id: rt.name,
    name: rt.name,
    endpoint: rt.endpoint,
    description,
    schema: rt.schema.id,
    schemaExtensions: rt.extensions.map((e) => ({ schema: e.id, required: false })),
    meta: { resourceType: 'ResourceType' },
  };
}

/** RESOURCE_TYPES are RFC 7643 §6, by id. */
export const RESOURCE_TYPES: ReadonlyMap<string, Doc> = new Map([
  ['User', resourceType(USER_RESOURCE, 'User Account')],
  ['Group', resourceType(GROUP_RESOURCE, 'Group')],
]);

/** UNIQUE and REQUIRED name the server-unique and required attributes of each schema. */
const UNIQUE = new Set([`${USER_SCHEMA.id}:userName`, `${GROUP_SCHEMA.id}:displayName`]);
const REQUIRED = UNIQUE;

function attribute(schema: SchemaDef, d: AttrDef, top: boolean): Doc {
  const key = `${schema.id}:${d.name}`;
  const out: Record<string, unknown> = {
    name: d.name,
    type: d.type,
    multiValued: d.multiValued,
    description: d.maxLength !== undefined ? `${d.minLength ?? 0} to ${d.maxLength} characters.` : '',
    required: top && REQUIRED.has(key),
    caseExact: d.caseExact,
    mutability: d.mutability,
    returned: d.returned,
    uniqueness: top && UNIQUE.has(key) ? 'server' : 'none',
  };
  if (d.type === 'reference') out['referenceTypes'] = d.name === '$ref' ? ['User', 'Group'] : ['external'];
  if (d.subAttributes) out['subAttributes'] = d.subAttributes.map((s) => attribute(schema, s, false));
  return out;
}

function schemaDoc(s: SchemaDef, description: string): Doc {
  return {
    schemas: [SCHEMA_SCHEMA],
    id: s.id,
    name: s.name,
    description,
    attributes: s.attributes.map((d) => attribute(s, d, true)),
    meta: { resourceType: 'Schema' },
  };
}

/** SCHEMAS are RFC 7643 §7, by URN. */
export const SCHEMAS: ReadonlyMap<string, Doc> = new Map([
  [USER_SCHEMA.id, schemaDoc(USER_SCHEMA, 'User Account, with the Workflow Automation attributes')],
  [ENTERPRISE_USER_SCHEMA.id, schemaDoc(ENTERPRISE_USER_SCHEMA, 'Enterprise User')],
  [GROUP_SCHEMA.id, schemaDoc(GROUP_SCHEMA, 'Group')],
]);

/** withLocation copies a document and sets meta.location (RFC 7643 §3.1). */
export function withLocation(doc: Doc, location: string): Record<string, unknown> {
  const copy = structuredClone(doc) as Record<string, unknown>;
  copy['meta'] = { ...(copy['meta'] as object), location };
  return copy;
}
