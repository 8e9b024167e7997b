/**
 * SCIM attribute projection: the `attributes` and `excludedAttributes` parameters (RFC 7644 §3.4.2.5, §3.9).
 *
 *   stored resource -> project(resource, { attributes: 'userName,name.givenName' }) -> response body
 *
 * Attributes returned "always" (`id`, `schemas`) survive every projection, and "never" ones (`password`)
 * are never returned (RFC 7643 §7). Names may be URN-qualified, name a sub-attribute (`emails.value`) or
 * a whole extension (`urn:...:enterprise:2.0:User`), in any case.
 */
import { getKey, resolveName, type AttrDef, type ResourceTypeDef } from './attributes.js';
import { cloneJson } from './json.js';
import type { ScimResource } from './patch.js';

/** ProjectionOptions are the two query parameters, as a comma-separated string or a list, and the resource type. */
export interface ProjectionOptions {
  readonly resourceType: ResourceTypeDef;
  readonly attributes?: string | readonly string[] | undefined;
  readonly excludedAttributes?: string | readonly string[] | undefined;
}

/** Pick is what a projection says about one attribute: all of it, or some of its sub-attributes. */
type Pick = true | Set<string>;
/** Selection maps lower-cased attribute names to a Pick, per container (core, or an extension URN). */
type Selection = Map<string, Map<string, Pick> | true>;

const CORE = '';
/** NOTHING is the selection of a projection with neither parameter; never written to. */
const NOTHING: Selection = new Map();

function names(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  const list = typeof v === 'string' ? v.split(',') : v.flatMap((s) => s.split(','));
  return list.map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * selectionOf resolves names into a Selection. Names that resolve to nothing are ignored: asking for an
 * attribute the service provider does not have returns nothing for it, not an error.
 */
function selectionOf(rt: ResourceTypeDef, list: string[]): Selection {
  const sel: Selection = new Map();
  for (const n of list) {
    const r = resolveName(rt, n);
    if (typeof r === 'string') continue;
    if (r.kind === 'schema') {
      sel.set(r.schema.id.toLowerCase(), true);
      continue;
    }
    const key = r.extension ? r.schema.id.toLowerCase() : CORE;
    let attrs = sel.get(key);
    if (attrs === true) continue;
    if (attrs === undefined) sel.set(key, (attrs = new Map()));
    const name = r.attr.name.toLowerCase();
    const cur = attrs.get(name);
    if (r.sub === undefined) attrs.set(name, true);
    else if (cur === undefined) attrs.set(name, new Set([r.sub.name.toLowerCase()]));
    else if (cur !== true) cur.add(r.sub.name.toLowerCase());
  }
  return sel;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** subset keeps (or, with keep=false, drops) the listed sub-attributes of a complex value or of each element. */
function subset(v: unknown, subs: Set<string>, keep: boolean): unknown {
  const one = (el: unknown): unknown => {
    if (!isObject(el)) return el;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(el)) if (subs.has(k.toLowerCase()) === keep) out[k] = x;
    return out;
  };
  const empty = (x: unknown) => isObject(x) && Object.keys(x).length === 0;
  if (Array.isArray(v)) {
    const list = v.map(one).filter((x) => !empty(x));
    return list.length > 0 ? list : undefined;
  }
  const r = one(v);
  return empty(r) ? undefined : r;
}

/** Def is what a key of a resource is: an attribute, a whole extension, or unknown. */
type Def = AttrDef | 'extension' | undefined;

/**
 * defs memoises defOf per resource type and container (core is '', an extension its URN as written): a
 * rendered resource has the same dozen keys every time, and resolving each name again was most of the
 * cost of a projection. Keys are the client's spelling, so the memory is bounded: past DEFS_MAX names
 * per resource type, defOf resolves without remembering.
 */
const defs = new WeakMap<ResourceTypeDef, { size: number; byContainer: Map<string, Map<string, Def>> }>();
const DEFS_MAX = 1_000;

/** defOf finds the definition of a key of the resource, or of an extension object. */
function defOf(rt: ResourceTypeDef, key: string, extension: string | undefined): Def {
  let memo = defs.get(rt);
  if (memo === undefined) defs.set(rt, (memo = { size: 0, byContainer: new Map() }));
  const container = extension ?? CORE;
  let known = memo.byContainer.get(container);
  const def = known?.get(key);
  if (def !== undefined || known?.has(key) === true) return def;
  const resolved = resolveDef(rt, key, extension);
  if (memo.size < DEFS_MAX) {
    if (known === undefined) memo.byContainer.set(container, (known = new Map()));
    known.set(key, resolved);
    memo.size++;
  }
  return resolved;
}

function resolveDef(rt: ResourceTypeDef, key: string, extension: string | undefined): Def {
  const r = resolveName(rt, extension === undefined ? key : `${extension}:${key}`);
  if (typeof r === 'string') return undefined;
  if (r.kind === 'schema') return extension === undefined ? 'extension' : undefined;
  return r.sub === undefined ? r.attr : undefined;
}

/**
 * project applies `attributes` (only these, plus "always" ones) or else `excludedAttributes` (all default
 * ones but these) to a resource, and never returns "never" attributes. When both are given, `attributes`
 * wins, since it already names exactly what to return. The input is not modified.
 */
export function project(resource: ScimResource, opts: ProjectionOptions): ScimResource {
  const rt = opts.resourceType;
  const include = names(opts.attributes);
  const exclude = include.length > 0 ? [] : names(opts.excludedAttributes);
  const sel = include.length === 0 && exclude.length === 0 ? NOTHING : selectionOf(rt, include.length > 0 ? include : exclude);
  const mode = include.length > 0 ? 'include' : exclude.length > 0 ? 'exclude' : 'default';
  const walk = (obj: Record<string, unknown>, ext: string | undefined): Record<string, unknown> => {
    const picks = sel.get(ext === undefined ? CORE : ext.toLowerCase());
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      const def = defOf(rt, k, ext);
      if (def === 'extension') {
        const inner = getKey(obj, k);
        if (!isObject(inner)) continue;
        const whole = sel.get(k.toLowerCase());
        let next: Record<string, unknown> | undefined;
        if (whole === true) next = mode === 'include' ? inner : undefined;
        else if (mode === 'include' && whole === undefined) next = undefined;
        else next = walk(inner, k);
        if (next !== undefined && Object.keys(next).length > 0) out[k] = cloneJson(next);
        continue;
      }
      if (def?.returned === 'never') continue;
      const pick = picks === true ? true : picks?.get(k.toLowerCase());
      if (def?.returned === 'always' || mode === 'default') {
        out[k] = cloneJson(v);
      } else if (mode === 'include') {
        const x = pick === undefined ? undefined : pick === true ? v : subset(v, pick, true);
        if (x !== undefined) out[k] = cloneJson(x);
      } else {
        const x = pick === undefined ? v : pick === true ? undefined : subset(v, pick, false);
        if (x !== undefined) out[k] = cloneJson(x);
      }
    }
    return out;
  };
  return walk(resource, undefined);
}
