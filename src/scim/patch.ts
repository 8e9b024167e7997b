/**
 * SCIM PATCH (RFC 7644 §3.5.2), and building a resource from a POST or PUT body, as Okta and Entra send them.
 *
 *   stored resource + Operations -> applyPatch -> new resource (the input is never touched)
 *
 * Every operation runs against a private copy; the first failure throws and the caller's resource is
 * unchanged, so a failed request writes nothing. Output keeps canonical attribute names whatever case
 * the client used, booleans sent as "True"/"False" become booleans, and `schemas` is recomputed from the
 * extensions actually present.
 */
import {
  childAttr,
  clip,
  getKey,
  parseBoolean,
  resolveName,
  validateLengths,
  type AttrDef,
  type ResourceTypeDef,
  type SchemaDef,
} from './attributes.js';
import { badRequest, ScimError } from './errors.js';
import { matches, parsePath, type Filter } from './filter.js';

/** PATCH_OP_SCHEMA is the message schema of a PATCH body (RFC 7644 §3.5.2). */
export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
/** MAX_PATCH_OPERATIONS bounds the operations of one PATCH request. */
export const MAX_PATCH_OPERATIONS = 1000;

/** ScimResource is a resource in its JSON form: core attributes at the top, extensions under their URN. */
export type ScimResource = Record<string, unknown>;

/** PatchOperation is one entry of `Operations`; `op` is matched case-insensitively (Entra sends "Replace"). */
export interface PatchOperation {
  op: string;
  path?: string;
  value?: unknown;
}

/** PatchOptions names the resource type the operations apply to. */
export interface PatchOptions {
  readonly resourceType: ResourceTypeDef;
}

type Op = 'add' | 'replace' | 'remove';

/**
 * parsePatchRequest checks a PATCH body (RFC 7644 §3.5.2) and returns its Operations. `schemas`, when
 * present, must name the PatchOp message; a body without it is accepted, as lenient servers do.
 */
export function parsePatchRequest(body: unknown): unknown[] {
  if (!isObject(body)) throw badRequest('invalidSyntax', 'PATCH body must be a JSON object');
  const schemas = getKey(body, 'schemas');
  if (schemas !== undefined && !(Array.isArray(schemas) && schemas.includes(PATCH_OP_SCHEMA))) {
    throw badRequest('invalidSyntax', `PATCH body schemas must include ${PATCH_OP_SCHEMA}`);
  }
  const ops = getKey(body, 'Operations');
  if (!Array.isArray(ops)) throw badRequest('invalidSyntax', 'PATCH body needs an "Operations" array');
  return ops;
}

/**
 * applyPatch applies RFC 7644 §3.5.2 operations in order and returns the new resource; it throws a 400
 * ScimError on the first bad operation, naming it, and never mutates `resource`.
 */
export function applyPatch(resource: ScimResource, operations: readonly unknown[], opts: PatchOptions): ScimResource {
  const rt = opts.resourceType;
  if (!Array.isArray(operations)) throw badRequest('invalidSyntax', '"Operations" must be an array');
  if (operations.length > MAX_PATCH_OPERATIONS) {
    throw badRequest('invalidValue', `a PATCH may carry at most ${MAX_PATCH_OPERATIONS} operations`);
  }
  const out = structuredClone(resource);
  operations.forEach((raw, i) => {
    try {
      applyOperation(out, rt, raw);
    } catch (err) {
      if (err instanceof ScimError) throw new ScimError(err.status, err.scimType, `operation ${i + 1}: ${err.detail}`);
      throw err;
    }
  });
  return finish(out, rt);
}

/**
 * buildResource makes a resource from a POST or PUT body: writable attributes come from the body, in
 * canonical form; read-only ones (`id`, `meta`, `groups`) come from `current` and are ignored in the body,
 * as Okta echoes them back on PUT (RFC 7644 §3.5.1). Unknown attributes are ignored (a tolerant reader for
 * whole-resource writes), `password` is never kept, and required attributes must be present.
 */
export function buildResource(rt: ResourceTypeDef, body: unknown, current?: ScimResource): ScimResource {
  if (!isObject(body)) throw badRequest('invalidSyntax', `${rt.name} body must be a JSON object`);
  const out: ScimResource = {};
  for (const [k, v] of Object.entries(current ?? {})) {
    const r = resolveName(rt, k);
    if (typeof r !== 'string' && r.kind === 'attr' && r.attr.mutability === 'readOnly' && k.toLowerCase() !== 'schemas') {
      out[r.attr.name] = structuredClone(v);
    }
  }
  applyObject(out, rt, 'add', body, true);
  return finish(out, rt);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function toList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * setKey writes obj[name] under the canonical name, dropping other spellings of it. null, an empty array
 * and an empty object all unassign the attribute (RFC 7643 §2.5).
 */
function setKey(obj: Record<string, unknown>, name: string, value: unknown): void {
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k !== name && k.toLowerCase() === lower) delete obj[k];
  const empty =
    value === undefined ||
    value === null ||
    (Array.isArray(value) && value.length === 0) ||
    (isObject(value) && Object.keys(value).length === 0);
  if (empty) delete obj[name];
  else obj[name] = value;
}

function applyOperation(out: ScimResource, rt: ResourceTypeDef, raw: unknown): void {
  if (!isObject(raw)) throw badRequest('invalidSyntax', 'is not a JSON object');
  const opText = getKey(raw, 'op');
  if (typeof opText !== 'string') throw badRequest('invalidSyntax', 'has no "op"');
  const op = opText.toLowerCase();
  if (op !== 'add' && op !== 'replace' && op !== 'remove') {
    throw badRequest('invalidSyntax', `has unknown op "${clip(opText)}" (add, replace or remove)`);
  }
  const path = getKey(raw, 'path');
  const hasValue = Object.keys(raw).some((k) => k.toLowerCase() === 'value');
  const value = getKey(raw, 'value');
  if (path !== undefined && typeof path !== 'string') throw badRequest('invalidPath', '"path" must be a string');
  if (op !== 'remove' && !hasValue) throw badRequest('invalidValue', `"${op}" needs a "value"`);
  if (path === undefined || path === '') {
    // RFC 7644 §3.5.2.2: remove without a path is noTarget; §3.5.2.1/3: add and replace take an object.
    if (op === 'remove') throw badRequest('noTarget', '"remove" needs a "path"');
    if (!isObject(value)) throw badRequest('invalidValue', `"${op}" without a path needs an object "value"`);
    applyObject(out, rt, op, value, false);
    return;
  }
  applyPath(out, rt, op, path, value, hasValue, false);
}

/**
 * applyObject applies a path-less add or replace: each key is a path of its own, so Entra's dotted and
 * URN-qualified keys (`name.givenName`, `urn:...:enterprise:2.0:User:department`) work like nested objects.
 * Read-only keys are skipped, as Okta echoes `id` on rename; `lenient` skips unknown keys too.
 */
function applyObject(out: ScimResource, rt: ResourceTypeDef, op: Op, value: Record<string, unknown>, lenient: boolean): void {
  for (const [key, v] of Object.entries(value)) {
    if (key.toLowerCase() === 'schemas') continue; // recomputed in finish()
    if (lenient && typeof resolveName(rt, key.split('[')[0] as string) === 'string') continue;
    applyPath(out, rt, op, key, v, true, true);
  }
}

function applyPath(
  out: ScimResource,
  rt: ResourceTypeDef,
  op: Op,
  pathText: string,
  value: unknown,
  hasValue: boolean,
  fromObject: boolean,
): void {
  const path = parsePath(pathText, rt);
  const { target } = path;
  if (target.kind === 'schema') {
    applyExtension(out, rt, op, target.schema, value);
    return;
  }
  const { attr } = target;
  const leaf = path.sub ?? target.sub ?? attr;
  if (attr.mutability === 'readOnly' || leaf.mutability === 'readOnly') {
    // RFC 7644 §3.5.2: a read-only target is a mutability error, but echoed read-only keys are ignored.
    if (fromObject) return;
    throw badRequest('mutability', `"${leaf.name}" is read-only`);
  }
  if (attr.mutability === 'writeOnly') return; // password: accepted, never stored
  const container = containerOf(out, target.extension ? target.schema.id : undefined, op !== 'remove');
  if (container === undefined) return;
  if (path.filter !== undefined) {
    applyFiltered(container, op, attr, path.filter, path.sub, value, pathText);
    return;
  }
  if (target.sub !== undefined) {
    if (attr.multiValued) {
      const example = `${attr.name}[type eq "work"].${target.sub.name}`;
      throw badRequest('invalidPath', `"${clip(pathText)}" needs a value filter, e.g. ${example}`);
    }
    const parent = getKey(container, attr.name);
    const obj = isObject(parent) ? parent : {};
    setKey(obj, target.sub.name, op === 'remove' ? undefined : normalize(target.sub, value, `${attr.name}.${target.sub.name}`));
    setKey(container, attr.name, Object.keys(obj).length > 0 ? obj : undefined);
    return;
  }
  if (op === 'remove') {
    if (attr.multiValued && hasValue && value !== null) removeListed(container, attr, value);
    else setKey(container, attr.name, undefined);
    return;
  }
  const next = normalize(attr, value, attr.name);
  if (attr.multiValued) {
    const added = next as unknown[];
    const { list, written } =
      op === 'add' ? mergeUnique(attr, toList(getKey(container, attr.name)), added) : { list: added, written: new Set(added) };
    setKey(container, attr.name, enforcePrimary(list, written));
  } else if (attr.type === 'complex' && isObject(next)) {
    // RFC 7644 §3.5.2.1/3: sub-attributes not given are left unchanged.
    const cur = getKey(container, attr.name);
    setKey(container, attr.name, stripNulls({ ...(isObject(cur) ? cur : {}), ...next }));
  } else {
    setKey(container, attr.name, next);
  }
}

/** applyExtension handles a path that is a whole extension URN: its value is an object of that extension's attributes. */
function applyExtension(out: ScimResource, rt: ResourceTypeDef, op: Op, schema: SchemaDef, value: unknown): void {
  if (op === 'remove') {
    setKey(out, schema.id, undefined);
    return;
  }
  if (value === null) return;
  if (!isObject(value)) throw badRequest('invalidValue', `"${schema.id}" needs an object value`);
  // Keys inside the object are echoed values, so read-only ones are skipped as in a path-less value.
  for (const [k, v] of Object.entries(value)) applyPath(out, rt, op, `${schema.id}:${k}`, v, true, true);
}

function containerOf(out: ScimResource, extension: string | undefined, create: boolean): Record<string, unknown> | undefined {
  if (extension === undefined) return out;
  const cur = getKey(out, extension);
  if (!isObject(cur) && !create) return undefined;
  setKey(out, extension, undefined);
  // Assigned directly: setKey would drop the still-empty object; finish() drops it if it stays empty.
  const ext = isObject(cur) ? cur : {};
  out[extension] = ext;
  return ext;
}

/**
 * applyFiltered handles `attr[filter]` and `attr[filter].sub`. RFC 7644 §3.5.2.3 makes a replace that
 * matches nothing a noTarget error, but Entra replaces `emails[type eq "work"].value` on users that have
 * no work email and expects it created; so add and replace create the element when the filter is a
 * conjunction of `eq` tests that describe it, and fail with noTarget otherwise. A remove that matches
 * nothing changes nothing (§3.5.2.2 only asks to remove what matches), so Okta's retried removals succeed.
 */
function applyFiltered(
  container: Record<string, unknown>,
  op: Op,
  attr: AttrDef,
  filter: Filter,
  sub: AttrDef | undefined,
  value: unknown,
  pathText: string,
): void {
  const list = toList(getKey(container, attr.name));
  const hit = list.filter((el) => isObject(el) && matches(filter, el)) as Record<string, unknown>[];
  if (op === 'remove') {
    const gone = new Set<unknown>(hit);
    if (sub !== undefined) {
      // Dropping `value` leaves an element with no identity, so the element goes with it.
      for (const el of hit) {
        if (sub.name === 'value') continue;
        delete el[sub.name];
        gone.delete(el);
      }
    }
    setKey(container, attr.name, list.filter((el) => !gone.has(el) && !(isObject(el) && Object.keys(el).length === 0)));
    return;
  }
  const label = sub ? `${attr.name}.${sub.name}` : attr.name;
  const patch = sub !== undefined ? { [sub.name]: normalize(sub, value, label) } : normalizeElement(attr, value, label);
  if (hit.length === 0) {
    const seed = seedOf(filter);
    if (seed === undefined) throw badRequest('noTarget', `"${clip(pathText)}" matches no value`);
    const el = { ...normalizeElement(attr, seed, attr.name), ...patch };
    requireValue(attr, el, attr.name);
    hit.push(el);
    list.push(el);
  } else {
    for (const el of hit) Object.assign(el, patch);
  }
  for (const el of hit) stripNulls(el);
  // An element whose value was just unassigned has no identity left, so it goes (as in remove above).
  const written = new Set<unknown>(hit);
  const hasValue = childAttr(attr, 'value') !== undefined;
  const kept = hasValue ? list.filter((el) => !written.has(el) || (el as Record<string, unknown>)['value'] !== undefined) : list;
  setKey(container, attr.name, enforcePrimary(kept, written));
}

/** seedOf turns `type eq "work" and primary eq true` into `{type:"work", primary:true}`; other filters give undefined. */
function seedOf(f: Filter): Record<string, unknown> | undefined {
  if (f.op === 'eq' && f.value !== null && f.path.sub === undefined) return { [f.path.attr.name]: f.value };
  if (f.op !== 'and') return undefined;
  const seed: Record<string, unknown> = {};
  for (const part of f.filters) {
    const s = seedOf(part);
    if (s === undefined) return undefined;
    Object.assign(seed, s);
  }
  return seed;
}

/** elementKey identifies an element for de-duplication: its `value` when it has one, else its JSON. */
function elementKey(attr: AttrDef, el: unknown): string {
  const vdef = childAttr(attr, 'value');
  const v = isObject(el) ? el['value'] : undefined;
  if (vdef !== undefined && typeof v === 'string') return 'v:' + (vdef.caseExact ? v : v.toLowerCase());
  return 'j:' + JSON.stringify(el);
}

/**
 * mergeUnique appends new elements; one already present (same `value`) is updated, not duplicated
 * (RFC 7644 §3.5.2.1). Returns the list and the elements written, for enforcePrimary.
 */
function mergeUnique(attr: AttrDef, current: unknown[], added: unknown[]): { list: unknown[]; written: Set<unknown> } {
  const list = current.slice();
  const written = new Set<unknown>();
  const at = new Map<string, number>();
  list.forEach((el, i) => at.set(elementKey(attr, el), i));
  for (const el of added) {
    const k = elementKey(attr, el);
    const i = at.get(k);
    let next = el;
    if (i === undefined) {
      at.set(k, list.length);
      list.push(el);
    } else {
      next = isObject(list[i]) && isObject(el) ? { ...(list[i] as object), ...el } : el;
      list[i] = next;
    }
    written.add(next);
  }
  return { list, written };
}

/**
 * removeListed is Entra's `{"op":"Remove","path":"members","value":[{"value":"id"}]}`: it removes only the
 * listed elements, never the whole attribute; an empty list removes nothing.
 */
function removeListed(container: Record<string, unknown>, attr: AttrDef, value: unknown): void {
  const listed = normalize(attr, value, attr.name) as unknown[];
  const keys = new Set(listed.map((el) => elementKey(attr, el)));
  const list = toList(getKey(container, attr.name));
  setKey(container, attr.name, list.filter((el) => !keys.has(elementKey(attr, el))));
}

/** enforcePrimary keeps at most one `primary: true` (RFC 7643 §2.4), preferring an element just written. */
function enforcePrimary(list: unknown[], written: Set<unknown>): unknown[] {
  const primaries = list.filter((el) => isObject(el) && el['primary'] === true) as Record<string, unknown>[];
  if (primaries.length < 2) return list;
  const keep = [...primaries].reverse().find((el) => written.has(el)) ?? primaries[0];
  return list.map((el) => (el !== keep && primaries.includes(el as Record<string, unknown>) ? { ...(el as object), primary: false } : el));
}

/**
 * normalize checks a value against its attribute and returns it in canonical form: booleans from
 * "True"/"False", canonical sub-attribute names, unknown and read-only sub-attributes dropped, a single
 * value wrapped for a multi-valued attribute, and a bare string taken as `{value}` for a complex attribute
 * with a `value` (Entra sends the enterprise manager as a plain id). null stays null: unassign (RFC 7643 §2.5).
 */
function normalize(def: AttrDef, v: unknown, label: string): unknown {
  if (v === null) return null;
  if (!def.multiValued) return normalizeOne(def, v, label);
  return toList(v)
    .filter((x) => x !== null)
    .map((x, i) => {
      const el = stripNulls(normalizeOne(def, x, `${label}[${i}]`));
      requireValue(def, el, `${label}[${i}]`);
      return el;
    });
}

/** stripNulls drops null sub-attributes in place: they were unassigned (RFC 7643 §2.5). */
function stripNulls<T>(v: T): T {
  if (isObject(v)) for (const k of Object.keys(v)) if (v[k] === null) delete v[k];
  return v;
}

/** requireValue rejects an element of a multi-valued attribute that has a `value` sub-attribute but no value. */
function requireValue(def: AttrDef, el: unknown, label: string): void {
  if (def.type === 'complex' && childAttr(def, 'value') !== undefined && isObject(el) && el['value'] === undefined) {
    throw badRequest('invalidValue', `${label}.value is required`);
  }
}

function normalizeElement(def: AttrDef, v: unknown, label: string): Record<string, unknown> {
  const el = normalizeOne(def, v, label);
  if (!isObject(el)) throw badRequest('invalidValue', `${label} needs an object value`);
  return el;
}

function normalizeOne(def: AttrDef, v: unknown, label: string): unknown {
  switch (def.type) {
    case 'boolean': {
      const b = parseBoolean(v);
      if (b === undefined) throw badRequest('invalidValue', `${label} must be true or false`);
      return b;
    }
    case 'integer':
    case 'decimal':
      if (typeof v !== 'number' || !Number.isFinite(v) || (def.type === 'integer' && !Number.isInteger(v))) {
        throw badRequest('invalidValue', `${label} must be ${def.type === 'integer' ? 'an integer' : 'a number'}`);
      }
      return v;
    case 'complex': {
      if (typeof v === 'string' && childAttr(def, 'value') !== undefined) return { value: v };
      if (!isObject(v)) throw badRequest('invalidValue', `${label} must be an object`);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const sd = childAttr(def, k);
        if (sd === undefined || sd.mutability === 'readOnly') continue;
        out[sd.name] = normalize(sd, x, `${label}.${sd.name}`);
      }
      return out;
    }
    case 'dateTime':
      if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw badRequest('invalidValue', `${label} must be a dateTime`);
      return v;
    default:
      if (typeof v !== 'string') throw badRequest('invalidValue', `${label} must be a string`);
      return v;
  }
}

const REQUIRED: Record<ResourceTypeDef['name'], string> = { User: 'userName', Group: 'displayName' };

/** finish recomputes `schemas`, drops empty extensions, and checks required attributes and ZIA's lengths. */
function finish(out: ScimResource, rt: ResourceTypeDef): ScimResource {
  const schemas = [rt.schema.id];
  for (const ext of rt.extensions) {
    const obj = getKey(out, ext.id);
    if (isObject(obj) && Object.keys(obj).length > 0) schemas.push(ext.id);
    else setKey(out, ext.id, undefined);
  }
  setKey(out, 'schemas', schemas);
  const required = REQUIRED[rt.name];
  const v = getKey(out, required);
  if (typeof v !== 'string' || v.trim() === '') throw badRequest('invalidValue', `${required} is required`);
  if (rt.name === 'User') validateLengths(out);
  return out;
}
