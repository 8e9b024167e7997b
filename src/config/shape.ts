/**
 * shape: what other modules need to know of the config's shape without loading its schema (zod):
 * the top-level sections and the defaults read outside validation. schema.ts uses the same
 * constants, and a test holds CONFIG_SECTIONS to the schema's own keys.
 */

/** CONFIG_SECTIONS are the config's top-level keys, in the schema's order. */
export const CONFIG_SECTIONS = [
  'cloud',
  'orgId',
  'nodeName',
  'listeners',
  'store',
  'workers',
  'locations',
  'idps',
  'unknownSources',
  'authentication',
  'labIdp',
  'connectPorts',
  'hosts',
  'pac',
  'limits',
  'inspection',
  'transparent',
  'logging',
  'admin',
] as const;

/** DEFAULT_SCIM_RATE_LIMIT is ZIA's SCIM limit (requests per second per IdP), which Okta's integration expects. */
export const DEFAULT_SCIM_RATE_LIMIT = 5;
