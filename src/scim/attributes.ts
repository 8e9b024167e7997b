/**
 * SCIM attribute tables: the schemas Tollgate serves, and name resolution against them.
 *
 *   "URN:...:enterprise:2.0:User:Manager.Value" -> resolveName -> { schema, attr: manager, sub: value }
 *
 * Users carry the core schema (RFC 7643 §4.1), the enterprise extension (§4.3) and the Workflow
 * Automation attributes that ZIA adds in the core namespace. Groups carry the core Group schema (§4.2).
 * Attribute names are matched case-insensitively (RFC 7643 §2.1) and always written back in their
 * canonical spelling.
 */
import { badRequest } from './errors.js';

/** AttrType is an RFC 7643 §2.3 data type. */
export type AttrType = 'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'reference' | 'binary' | 'complex';
/** Mutability is the RFC 7643 §7 mutability characteristic. */
export type Mutability = 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
/** Returned is the RFC 7643 §7 returned characteristic. */
export type Returned = 'always' | 'never' | 'default' | 'request';

/** AttrDef describes one attribute or sub-attribute (RFC 7643 §7). */
export interface AttrDef {
  readonly name: string;
  readonly type: AttrType;
  readonly multiValued: boolean;
  readonly mutability: Mutability;
  readonly returned: Returned;
  readonly caseExact: boolean;
  readonly subAttributes?: readonly AttrDef[];
  /** minLength and maxLength bound string values (ZIA Workflow Automation); see validateLengths. */
  readonly minLength?: number;
  readonly maxLength?: number;
}

/** SchemaDef is one schema: its URN and its attributes (RFC 7643 §7). */
export interface SchemaDef {
  readonly id: string;
  readonly name: string;
  readonly attributes: readonly AttrDef[];
}

/** ResourceTypeDef is a resource type with its core schema and extensions (RFC 7643 §6). */
export interface ResourceTypeDef {
  readonly name: 'User' | 'Group';
  readonly endpoint: string;
  readonly schema: SchemaDef;
  readonly extensions: readonly SchemaDef[];
}

type AttrOpts = Partial<Omit<AttrDef, 'name' | 'type'>>;

function a(name: string, type: AttrType, o: AttrOpts = {}): AttrDef {
  return {
    name,
    type,
    multiValued: o.multiValued ?? false,
    mutability: o.mutability ?? 'readWrite',
    returned: o.returned ?? 'default',
    caseExact: o.caseExact ?? false,
    ...(o.subAttributes ? { subAttributes: o.subAttributes } : {}),
    ...(o.minLength !== undefined ? { minLength: o.minLength } : {}),
    ...(o.maxLength !== undefined ? { maxLength: o.maxLength } : {}),
  };
}

const str = (name: string, o: AttrOpts = {}): AttrDef => a(name, 'string', o);
const complex = (name: string, subAttributes: AttrDef[], o: AttrOpts = {}): AttrDef =>
  a(name, 'complex', { ...o, subAttributes });
const multi = (name: string, subAttributes: AttrDef[], o: AttrOpts = {}): AttrDef =>
  complex(name, subAttributes, { ...o, multiValued: true });

/** plural is the value/display/type/primary shape shared by emails, phoneNumbers, ims, ... (RFC 7643 §2.4). */
function plural(valueType: AttrType = 'string', caseExact = false): AttrDef[] {
  return [a('value', valueType, { caseExact }), str('display'), str('type'), a('primary', 'boolean')];
}

/** SCHEMA_USER, SCHEMA_GROUP and SCHEMA_ENTERPRISE_USER are the schema URNs (RFC 7643 §8.2, §4.3). */
export const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCHEMA_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/**
 * COMMON_ATTRIBUTES are the attributes every resource has outside any schema (RFC 7643 §3.1): `id` and
 * `meta` are set by the server, `externalId` by the client; `id` and `externalId` are caseExact.
 */
export const COMMON_ATTRIBUTES: readonly AttrDef[] = [
  a('schemas', 'reference', { multiValued: true, mutability: 'readOnly', returned: 'always', caseExact: true }),
  str('id', { mutability: 'readOnly', returned: 'always', caseExact: true }),
  str('externalId', { caseExact: true }),
  complex(
    'meta',
    [
      str('resourceType', { mutability: 'readOnly', caseExact: true }),
      a('created', 'dateTime', { mutability: 'readOnly' }),
      a('lastModified', 'dateTime', { mutability: 'readOnly' }),
      a('location', 'reference', { mutability: 'readOnly', caseExact: true }),
      str('version', { mutability: 'readOnly', caseExact: true }),
    ],
    { mutability: 'readOnly' },
  ),
];

/** WORKFLOW_LIMITS are ZIA Workflow Automation's length limits on core User attributes. */
const WORKFLOW_LIMITS: Record<string, number> = {
  manager: 128,
  streetAddress: 64,
  title: 32,
  city: 32,
  state: 32,
  zipCode: 32,
  countryCode: 32,
  postalAddress: 32,
  locale: 32,
  mobilePhones: 32,
  preferredLanguage: 32,
  employeeNumber: 32,
};

const wa = (name: string): AttrDef => str(name, { minLength: 1, maxLength: WORKFLOW_LIMITS[name] ?? 32 });

/** USER_SCHEMA is the core User schema (RFC 7643 §4.1) plus ZIA's Workflow Automation attributes. */
export const USER_SCHEMA: SchemaDef = {
  id: SCHEMA_USER,
  name: 'User',
  attributes: [
    str('userName'),
    complex('name', [
      str('formatted'),
      str('familyName'),
      str('givenName'),
      str('middleName'),
      str('honorificPrefix'),
      str('honorificSuffix'),
    ]),
    str('displayName'),
    str('nickName'),
    a('profileUrl', 'reference'),
    wa('title'),
    str('userType'),
    wa('preferredLanguage'),
    wa('locale'),
    str('timezone'),
    a('active', 'boolean'),
    str('password', { mutability: 'writeOnly', returned: 'never' }),
    multi('emails', plural()),
    multi('phoneNumbers', plural()),
    multi('ims', plural()),
    multi('photos', plural('reference')),
    multi('addresses', [
      str('formatted'),
      str('streetAddress'),
      str('locality'),
      str('region'),
      str('postalCode'),
      str('country'),
      str('type'),
      a('primary', 'boolean'),
    ]),
    multi(
      'groups',
      [
        str('value', { mutability: 'readOnly', caseExact: true }),
        a('$ref', 'reference', { mutability: 'readOnly' }),
        str('display', { mutability: 'readOnly' }),
        str('type', { mutability: 'readOnly' }),
      ],
      { mutability: 'readOnly' },
    ),
    multi('entitlements', plural()),
    multi('roles', plural()),
    multi('x509Certificates', plural('binary', true)),
    // ZIA Workflow Automation: single strings in the core namespace, with length limits.
    wa('manager'),
    wa('streetAddress'),
    wa('city'),
    wa('state'),
    wa('zipCode'),
    wa('countryCode'),
    wa('postalAddress'),
    wa('mobilePhones'),
    wa('employeeNumber'),
  ],
};

/** ENTERPRISE_USER_SCHEMA is the enterprise User extension (RFC 7643 §4.3). */
export const ENTERPRISE_USER_SCHEMA: SchemaDef = {
  id: SCHEMA_ENTERPRISE_USER,
  name: 'EnterpriseUser',
  attributes: [
    str('employeeNumber'),
    str('costCenter'),
    str('organization'),
    str('division'),
    str('department'),
    complex('manager', [
      str('value', { caseExact: true }),
      a('$ref', 'reference'),
      str('displayName', { mutability: 'readOnly' }),
    ]),
  ],
};

/**
 * GROUP_SCHEMA is the core Group schema (RFC 7643 §4.2). `members.display` is not in the RFC but Okta and
 * Entra send it; member values are ids, so they compare caseExact like `id`.
 */
export const GROUP_SCHEMA: SchemaDef = {
  id: SCHEMA_GROUP,
  name: 'Group',
  attributes: [
    str('displayName'),
    multi('members', [
      str('value', { mutability: 'immutable', caseExact: true }),
      a('$ref', 'reference', { mutability: 'immutable' }),
      str('display'),
      str('type', { mutability: 'immutable' }),
    ]),
  ],
};

/** USER_RESOURCE and GROUP_RESOURCE are the two resource types (RFC 7643 §6). */
export const USER_RESOURCE: ResourceTypeDef = {
  name: 'User',
  endpoint: '/Users',
  schema: USER_SCHEMA,
  extensions: [ENTERPRISE_USER_SCHEMA],
};
export const GROUP_RESOURCE: ResourceTypeDef = { name: 'Group', endpoint: '/Groups', schema: GROUP_SCHEMA, extensions: [] };

const childIndex = new WeakMap<object, Map<string, AttrDef>>();

/** childAttr finds a sub-attribute, or an attribute of a schema, by case-insensitive name. */
export function childAttr(parent: SchemaDef | AttrDef, name: string): AttrDef | undefined {
  let idx = childIndex.get(parent);
  if (idx === undefined) {
    idx = new Map();
    const list = 'attributes' in parent ? parent.attributes : (parent.subAttributes ?? []);
    for (const d of list) idx.set(d.name.toLowerCase(), d);
    childIndex.set(parent, idx);
  }
  return idx.get(name.toLowerCase());
}

/** Resolved is a name resolved against a resource type: an attribute, a sub-attribute, or a whole extension. */
export type Resolved =
  | { kind: 'attr'; schema: SchemaDef; extension: boolean; attr: AttrDef; sub: AttrDef | undefined }
  | { kind: 'schema'; schema: SchemaDef };

const ATTRNAME = /^(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)$/;

/** isAttrName tells whether text is an ATTRNAME of RFC 7644 §3.4.2.2 (or `$ref`, RFC 7643 §2.3.7). */
export function isAttrName(text: string): boolean {
  return ATTRNAME.test(text);
}

/**
 * resolveName resolves `[URN ":"] ATTRNAME ["." subAttr]` (RFC 7644 §3.10) against a resource type, or
 * returns a detail string saying what is wrong. Without a URN the common attributes and the core schema
 * come first; an unqualified name found only in an extension (`department`) resolves there, since no
 * core attribute can be shadowed by it. A bare extension URN resolves to the whole extension.
 */
export function resolveName(rt: ResourceTypeDef, text: string): Resolved | string {
  let schema: SchemaDef | undefined;
  let rest = text;
  if (text.slice(0, 4).toLowerCase() === 'urn:') {
    const lower = text.toLowerCase();
    for (const s of [rt.schema, ...rt.extensions]) {
      const id = s.id.toLowerCase();
      if (lower === id) {
        if (s === rt.schema) return `the core schema ${s.id} cannot be addressed as a whole`;
        return { kind: 'schema', schema: s };
      }
      if (lower.startsWith(id + ':')) {
        schema = s;
        rest = text.slice(id.length + 1);
        break;
      }
    }
    if (schema === undefined) {
      const cut = text.lastIndexOf(':');
      return `unknown schema "${clip(cut > 4 ? text.slice(0, cut) : text)}" for ${rt.name}`;
    }
  }
  const parts = rest.split('.');
  if (parts.length > 2) return `"${clip(text)}" has more than one sub-attribute level`;
  for (const p of parts) if (!isAttrName(p)) return `"${clip(text)}" is not a valid attribute name`;
  const [name, subName] = parts as [string, string | undefined];
  let attr: AttrDef | undefined;
  if (schema === undefined || schema === rt.schema) {
    attr = COMMON_ATTRIBUTES.find((d) => d.name.toLowerCase() === name.toLowerCase()) ?? childAttr(rt.schema, name);
    if (attr !== undefined) schema = rt.schema;
  } else {
    attr = childAttr(schema, name);
  }
  if (attr === undefined && schema === undefined) {
    for (const ext of rt.extensions) {
      attr = childAttr(ext, name);
      if (attr !== undefined) {
        schema = ext;
        break;
      }
    }
  }
  if (attr === undefined || schema === undefined) return `unknown attribute "${clip(name)}" for ${rt.name}`;
  let sub: AttrDef | undefined;
  if (subName !== undefined) {
    sub = attr.type === 'complex' ? childAttr(attr, subName) : undefined;
    if (sub === undefined) return `"${attr.name}" has no sub-attribute "${clip(subName)}"`;
  }
  return { kind: 'attr', schema, extension: schema !== rt.schema, attr, sub };
}

/** clip shortens client text quoted back in an error detail. */
export function clip(text: string, max = 64): string {
  return text.length > max ? text.slice(0, max) + '…' : text;
}

/**
 * getKey reads obj[name] with the canonical spelling first, then any spelling (RFC 7643 §2.1), so a
 * resource stored with client casing still reads correctly.
 */
export function getKey(obj: unknown, name: string): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const rec = obj as Record<string, unknown>;
  if (Object.hasOwn(rec, name)) return rec[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(rec)) if (k.toLowerCase() === lower) return rec[k];
  return undefined;
}

/** parseBoolean accepts JSON booleans and Entra's "True"/"False" strings, in any case. */
export function parseBoolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const l = v.toLowerCase();
    if (l === 'true') return true;
    if (l === 'false') return false;
  }
  return undefined;
}

/**
 * validateLengths enforces ZIA Workflow Automation's limits on a User: manager 1–128, streetAddress 1–64,
 * the other Workflow Automation attributes 1–32 characters. An absent or null value passes; an empty or
 * over-long string, or a value that is not a string, throws 400 invalidValue naming the attribute.
 */
export function validateLengths(user: Record<string, unknown>): void {
  for (const def of USER_SCHEMA.attributes) {
    if (def.maxLength === undefined) continue;
    const v = getKey(user, def.name);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw badRequest('invalidValue', `${def.name} must be a string`);
    const n = [...v].length;
    if (n < (def.minLength ?? 0) || n > def.maxLength) {
      throw badRequest('invalidValue', `${def.name} must be ${def.minLength ?? 0} to ${def.maxLength} characters long`);
    }
  }
}
