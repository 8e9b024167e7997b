/**
 * SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): text -> AST -> boolean.
 *
 *   ?filter=emails[type eq "work"] and not (active eq false)
 *     -> parseFilter -> { op: 'and', filters: [ {op:'valuePath', ...}, {op:'not', ...} ] }
 *     -> matches(ast, resource) -> true | false
 *
 * Names are resolved against the resource type while parsing, so an unknown attribute, or an operator
 * the attribute's type cannot take, fails as 400 invalidFilter before any resource is read.
 */
import {
  childAttr,
  clip,
  getKey,
  GROUP_SCHEMA,
  isAttrName,
  parseBoolean,
  resolveName,
  USER_SCHEMA,
  type AttrDef,
  type ResourceTypeDef,
  type Resolved,
} from './attributes.js';
import { badRequest, type ScimType } from './errors.js';

/** MAX_FILTER_LENGTH bounds the filter text, in characters. */
export const MAX_FILTER_LENGTH = 4096;
/** MAX_FILTER_DEPTH bounds the nesting of parentheses, `not` and value filters. */
export const MAX_FILTER_DEPTH = 32;

/** CompareOp is an attribute operator of RFC 7644 §3.4.2.2, Table 3 (besides `pr`). */
export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
/** Literal is a compValue: a JSON string, number, true, false or null. */
export type Literal = string | number | boolean | null;

/**
 * AttrPath is a resolved attribute reference. At the top of a filter it names an attribute of the resource
 * (stored under `resource[schema]` when `extension`); inside `[...]` it names a sub-attribute of the element.
 */
export interface AttrPath {
  readonly text: string;
  readonly schema: string;
  readonly extension: boolean;
  readonly attr: AttrDef;
  readonly sub: AttrDef | undefined;
}

/** Filter is the filter AST; `and`/`or` are n-ary so long chains stay shallow. */
export type Filter =
  | { readonly op: 'and' | 'or'; readonly filters: readonly Filter[] }
  | { readonly op: 'not'; readonly filter: Filter }
  | { readonly op: 'pr'; readonly path: AttrPath }
  | { readonly op: CompareOp; readonly path: AttrPath; readonly value: Literal }
  | { readonly op: 'valuePath'; readonly path: AttrPath; readonly filter: Filter };

const COMPARE_OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
/** WORD_CHARS are the characters of a word token (names, operators, numbers, URNs): `[A-Za-z0-9._:$+-]`. */
const WORD_CHARS = (() => {
  const t = new Uint8Array(128);
  for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:$+-') t[c.charCodeAt(0)] = 1;
  return t;
})();

function isWordChar(code: number): boolean {
  return code < 128 && WORD_CHARS[code] === 1;
}

interface Tok {
  readonly kind: '(' | ')' | '[' | ']' | 'str' | 'word';
  readonly text: string;
  readonly pos: number;
  readonly gap: boolean;
  readonly value?: string;
}

/** Scope is what names resolve against: the resource, or the sub-attributes of one complex attribute. */
type Scope = { readonly rt: ResourceTypeDef } | { readonly parent: AttrPath };

/** Parser is a recursive-descent parser over the tokens of one filter or path. */
class Parser {
  private readonly toks: Tok[];
  private i = 0;
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly what: string,
    private readonly scimType: ScimType,
  ) {
    if (text.length > MAX_FILTER_LENGTH) this.fail(`is longer than ${MAX_FILTER_LENGTH} characters`);
    this.toks = this.tokenize();
    if (this.toks.length === 0) this.fail('is empty');
  }

  fail(detail: string): never {
    throw badRequest(this.scimType, `${this.what} ${detail}`);
  }

  private failAt(tok: Tok | undefined, expected: string): never {
    if (tok === undefined) this.fail(`ended early: expected ${expected}`);
    this.fail(`at character ${tok.pos + 1}: expected ${expected}, found '${clip(tok.text, 32)}'`);
  }

  private tokenize(): Tok[] {
    const out: Tok[] = [];
    const s = this.text;
    let gap = false;
    for (let p = 0; p < s.length; ) {
      const c = s[p] as string;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
        gap = true;
        p++;
        continue;
      }
      if (c === '(' || c === ')' || c === '[' || c === ']') {
        out.push({ kind: c, text: c, pos: p, gap });
        p++;
      } else if (c === '"') {
        let q = p + 1;
        while (q < s.length && s[q] !== '"') q += s[q] === '\\' ? 2 : 1;
        if (q >= s.length) this.fail(`has an unterminated string starting at character ${p + 1}`);
        const raw = s.slice(p, q + 1);
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          // JSON.parse is the string-literal grammar of RFC 7644 §3.4.2.2 (compValue is a JSON string).
          this.fail(`has an invalid string literal at character ${p + 1}`);
        }
        out.push({ kind: 'str', text: raw, pos: p, gap, value: value as string });
        p = q + 1;
      } else if (isWordChar(s.charCodeAt(p))) {
        let q = p + 1;
        while (q < s.length && isWordChar(s.charCodeAt(q))) q++;
        out.push({ kind: 'word', text: s.slice(p, q), pos: p, gap });
        p = q;
      } else {
        this.fail(`has an unexpected character '${c}' at character ${p + 1}`);
      }
      gap = false;
    }
    return out;
  }

  private peek(): Tok | undefined {
    return this.toks[this.i];
  }

  private isWord(t: Tok | undefined, w: string): boolean {
    return t !== undefined && t.kind === 'word' && t.text.toLowerCase() === w;
  }

  private enter(): void {
    if (++this.depth > MAX_FILTER_DEPTH) this.fail(`nests deeper than ${MAX_FILTER_DEPTH} levels`);
  }

  /** parseFilter is `FILTER EOF`. */
  parseFilter(rt: ResourceTypeDef): Filter {
    const f = this.parseOr({ rt });
    const t = this.peek();
    if (t !== undefined) this.failAt(t, t.kind === ')' ? 'no unmatched )' : "'and', 'or' or the end of the filter");
    return f;
  }

  private parseOr(scope: Scope): Filter {
    const items = [this.parseAnd(scope)];
    while (this.isWord(this.peek(), 'or')) {
      this.i++;
      items.push(this.parseAnd(scope));
    }
    return items.length === 1 ? (items[0] as Filter) : { op: 'or', filters: items };
  }

  private parseAnd(scope: Scope): Filter {
    const items = [this.parseUnary(scope)];
    while (this.isWord(this.peek(), 'and')) {
      this.i++;
      items.push(this.parseUnary(scope));
    }
    return items.length === 1 ? (items[0] as Filter) : { op: 'and', filters: items };
  }

  /** parseUnary is `"not" "(" FILTER ")"`, `"(" FILTER ")"` or an attribute expression. */
  private parseUnary(scope: Scope): Filter {
    const t = this.peek();
    if (this.isWord(t, 'not')) {
      this.i++;
      if (this.peek()?.kind !== '(') this.failAt(this.peek(), "'(' after 'not'");
      this.i++;
      this.enter();
      const inner = this.parseOr(scope);
      this.expect(')', "')' closing 'not ('");
      this.depth--;
      return { op: 'not', filter: inner };
    }
    if (t?.kind === '(') {
      this.i++;
      this.enter();
      const inner = this.parseOr(scope);
      this.expect(')', "')'");
      this.depth--;
      return inner;
    }
    return this.parseAttrExpr(scope);
  }

  private expect(kind: Tok['kind'], expected: string): Tok {
    const t = this.peek();
    if (t === undefined || t.kind !== kind) this.failAt(t, expected);
    this.i++;
    return t;
  }

  /** name reads an attribute-name token. */
  name(): Tok {
    const t = this.peek();
    if (t === undefined || t.kind !== 'word' || !/^[A-Za-z$]/.test(t.text)) this.failAt(t, 'an attribute name');
    this.i++;
    return t;
  }

  /** resolve turns a name into an AttrPath within scope, or fails naming the problem. */
  resolve(scope: Scope, t: Tok): AttrPath {
    if ('parent' in scope) {
      const { parent } = scope;
      const sub = isAttrName(t.text) ? childAttr(parent.attr, t.text) : undefined;
      if (sub === undefined) this.fail(`names unknown sub-attribute "${clip(t.text)}" of "${parent.attr.name}"`);
      return { text: t.text, schema: parent.schema, extension: false, attr: sub, sub: undefined };
    }
    const r = resolveName(scope.rt, t.text);
    if (typeof r === 'string') this.fail(`at character ${t.pos + 1}: ${r}`);
    if (r.kind === 'schema') this.fail(`at character ${t.pos + 1}: "${clip(t.text)}" names a schema, not an attribute`);
    return { text: t.text, schema: r.schema.id, extension: r.extension, attr: r.attr, sub: r.sub };
  }

  /** valueFilter parses `"[" valFilter "]"` after a complex attribute; nested brackets are not allowed. */
  valueFilter(path: AttrPath): Filter {
    if (path.sub !== undefined || path.attr.type !== 'complex') {
      this.fail(`applies a value filter to "${clip(path.text)}", which is not a complex attribute`);
    }
    this.expect('[', "'['");
    this.enter();
    const inner = this.parseOr({ parent: path });
    this.expect(']', "']'");
    this.depth--;
    return inner;
  }

  /** subAfterBracket reads the optional `.subAttr` right after `]`. */
  subAfterBracket(path: AttrPath): AttrDef | undefined {
    const t = this.peek();
    if (t === undefined || t.kind !== 'word' || t.gap || !t.text.startsWith('.')) return undefined;
    this.i++;
    const name = t.text.slice(1);
    const sub = isAttrName(name) ? childAttr(path.attr, name) : undefined;
    if (sub === undefined) this.fail(`names unknown sub-attribute "${clip(name)}" of "${path.attr.name}"`);
    return sub;
  }

  private parseAttrExpr(scope: Scope): Filter {
    const t = this.name();
    const path = this.resolve(scope, t);
    if (this.peek()?.kind === '[') {
      if ('parent' in scope) this.fail(`at character ${(this.peek() as Tok).pos + 1}: value filters cannot nest`);
      const inner = this.valueFilter(path);
      const sub = this.subAfterBracket(path);
      if (sub === undefined) return { op: 'valuePath', path, filter: inner };
      // Extension: `emails[type eq "work"].value eq "x"` means one element satisfies both tests.
      const subPath: AttrPath = { text: sub.name, schema: path.schema, extension: false, attr: sub, sub: undefined };
      const test = this.parseOperator(subPath);
      return { op: 'valuePath', path, filter: { op: 'and', filters: [inner, test] } };
    }
    return this.parseOperator(path);
  }

  private parseOperator(path: AttrPath): Filter {
    const t = this.peek();
    const op = t?.kind === 'word' ? t.text.toLowerCase() : '';
    if (op === 'pr') {
      this.i++;
      return { op: 'pr', path };
    }
    if (!COMPARE_OPS.has(op)) this.failAt(t, `an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "${clip(path.text)}"`);
    this.i++;
    const value = this.literal(op);
    return { op: op as CompareOp, path, value: this.checkOperand(path, op as CompareOp, value) };
  }

  private literal(op: string): Literal {
    const t = this.peek();
    if (t?.kind === 'str') {
      this.i++;
      return t.value as string;
    }
    if (t?.kind === 'word') {
      const l = t.text.toLowerCase();
      if (l === 'true' || l === 'false' || l === 'null' || NUMBER.test(t.text)) {
        this.i++;
        return l === 'true' ? true : l === 'false' ? false : l === 'null' ? null : Number(t.text);
      }
    }
    this.failAt(t, `a value after '${op}' (a quoted string, a number, true, false or null)`);
  }

  /** checkOperand applies RFC 7644 §3.4.2.2's type rules to one comparison; returns the coerced value. */
  private checkOperand(path: AttrPath, op: CompareOp, value: Literal): Literal {
    const leaf = leafOf(path);
    const where = `"${clip(path.text)}"`;
    if (leaf === undefined) this.fail(`compares ${where}, which is complex: name one of its sub-attributes`);
    const type = leaf.type;
    if (op === 'co' || op === 'sw' || op === 'ew') {
      if (type === 'boolean' || type === 'integer' || type === 'decimal') this.fail(`uses '${op}' on ${where}, which is ${type}`);
      if (typeof value !== 'string') this.fail(`uses '${op}' on ${where} with a value that is not a string`);
      return value;
    }
    if (op !== 'eq' && op !== 'ne') {
      // Ordering a boolean or binary attribute is an invalidFilter by RFC 7644 §3.4.2.2.
      if (type === 'boolean' || type === 'binary') this.fail(`uses '${op}' on ${where}, which is ${type}`);
      if (value === null || typeof value === 'boolean') this.fail(`uses '${op}' on ${where} with ${String(value)}`);
    }
    if (value === null) return null;
    if (type === 'boolean') {
      const b = parseBoolean(value);
      if (b === undefined) this.fail(`compares ${where}, which is boolean, with ${JSON.stringify(value)}`);
      return b;
    }
    if (type === 'integer' || type === 'decimal') {
      if (typeof value !== 'number') this.fail(`compares ${where}, which is a number, with a non-number`);
      return value;
    }
    if (typeof value !== 'string') this.fail(`compares ${where}, which is a string, with ${String(value)}: quote the value`);
    if (type === 'dateTime' && Number.isNaN(Date.parse(value))) this.fail(`compares ${where} with "${clip(value)}", which is not a dateTime`);
    return value;
  }

  /** atBracket tells whether a value filter `[` comes next. */
  atBracket(): boolean {
    return this.peek()?.kind === '[';
  }

  /** done fails unless every token was read. */
  done(expected: string): void {
    const t = this.peek();
    if (t !== undefined) this.failAt(t, expected);
  }
}

/** leafOf is the attribute a comparison reads: the sub-attribute, or `value` of a complex attribute. */
function leafOf(path: AttrPath): AttrDef | undefined {
  if (path.sub !== undefined) return path.sub;
  if (path.attr.type === 'complex') return childAttr(path.attr, 'value');
  return path.attr;
}

/**
 * parseFilter parses an RFC 7644 §3.4.2.2 filter for a resource type. Precedence is not > and > or;
 * keywords, operators and attribute names are case-insensitive. Throws 400 invalidFilter with the
 * position and the problem.
 */
export function parseFilter(text: string, rt: ResourceTypeDef): Filter {
  if (typeof text !== 'string') throw badRequest('invalidFilter', 'filter must be a string');
  return new Parser(text, 'filter', 'invalidFilter').parseFilter(rt);
}

/** PatchPath is a parsed PATCH path (RFC 7644 §3.5.2): `attrPath`, or `valuePath` with an optional sub-attribute. */
export interface PatchPath {
  readonly text: string;
  /** target is an attribute (with its sub-attribute, when written as `a.b`) or a whole extension. */
  readonly target: Resolved;
  /** filter selects elements of a multi-valued attribute, for `attr[filter]`. */
  readonly filter: Filter | undefined;
  /** sub is the sub-attribute after `]`, for `attr[filter].sub`. */
  readonly sub: AttrDef | undefined;
}

/** parsePath parses `PATH = attrPath / valuePath [subAttr]` (RFC 7644 §3.5.2); failures are 400 invalidPath. */
export function parsePath(text: string, rt: ResourceTypeDef): PatchPath {
  const p: Parser = new Parser(text, `path "${clip(text)}"`, 'invalidPath');
  const head = p.name();
  const r = resolveName(rt, head.text);
  if (typeof r === 'string') p.fail(`is invalid: ${r}`);
  if (!p.atBracket()) {
    p.done('the end of the path');
    return { text, target: r, filter: undefined, sub: undefined };
  }
  if (r.kind === 'schema') p.fail('puts a value filter on a schema');
  const path: AttrPath = p.resolve({ rt }, head);
  if (path.sub === undefined && !path.attr.multiValued) p.fail(`filters "${path.attr.name}", which is not multi-valued`);
  const filter = p.valueFilter(path);
  const sub = p.subAfterBracket(path);
  p.done('the end of the path');
  return { text, target: r, filter, sub };
}

/** matches tells whether a resource satisfies a filter. Multi-valued attributes match when any value does. */
export function matches(filter: Filter, resource: unknown): boolean {
  switch (filter.op) {
    case 'and':
      return filter.filters.every((f) => matches(f, resource));
    case 'or':
      return filter.filters.some((f) => matches(f, resource));
    case 'not':
      return !matches(filter.filter, resource);
    case 'pr':
      return valuesAt(resource, filter.path, false).some(isPresent);
    case 'valuePath':
      return valuesAt(resource, filter.path, false).some((el) => isObject(el) && matches(filter.filter, el));
    case 'ne':
      // ne is the negation of eq, so an absent attribute is "not equal" (RFC 7644 §3.4.2.2, Table 3).
      return !matches({ op: 'eq', path: filter.path, value: filter.value }, resource);
    default: {
      const leaf = leafOf(filter.path) as AttrDef;
      const values = valuesAt(resource, filter.path, true).filter((v) => v !== null && v !== undefined);
      if (filter.value === null) return filter.op === 'eq' && values.length === 0;
      return values.some((v) => compare(filter.op as CompareOp, v, filter.value as Exclude<Literal, null>, leaf));
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function toList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** valuesAt lists the values a path reads; for a comparison a bare complex attribute reads its `value`. */
function valuesAt(obj: unknown, path: AttrPath, forCompare: boolean): unknown[] {
  const container = path.extension ? getKey(obj, path.schema) : obj;
  let list = toList(getKey(container, path.attr.name));
  const sub = path.sub ?? (forCompare && path.attr.type === 'complex' ? childAttr(path.attr, 'value') : undefined);
  if (sub !== undefined) list = list.flatMap((el) => toList(getKey(el, sub.name)));
  return list;
}

/** isPresent is `pr`: a value that is not null, not an empty string and not an empty object or array. */
function isPresent(v: unknown): boolean {
  if (v === null || v === undefined || v === '') return false;
  if (Array.isArray(v)) return v.some(isPresent);
  if (isObject(v)) return Object.values(v).some(isPresent);
  return true;
}

function compare(op: CompareOp, actual: unknown, expected: string | number | boolean, leaf: AttrDef): boolean {
  if (leaf.type === 'boolean') return parseBoolean(actual) === expected;
  if (leaf.type === 'integer' || leaf.type === 'decimal') {
    return typeof actual === 'number' && order(op, actual, expected as number);
  }
  if (typeof actual !== 'string' || typeof expected !== 'string') return false;
  if (leaf.type === 'dateTime' && op !== 'co' && op !== 'sw' && op !== 'ew') {
    // dateTime compares chronologically (RFC 7644 §3.4.2.2), so zones and fractions do not matter.
    const x = Date.parse(actual);
    return !Number.isNaN(x) && order(op, x, Date.parse(expected));
  }
  const a = leaf.caseExact ? actual : actual.toLowerCase();
  const e = leaf.caseExact ? expected : expected.toLowerCase();
  switch (op) {
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    default:
      return order(op, a, e);
  }
}

function order<T extends string | number>(op: CompareOp, a: T, b: T): boolean {
  switch (op) {
    case 'eq':
      return a === b;
    case 'gt':
      return a > b;
    case 'ge':
      return a >= b;
    case 'lt':
      return a < b;
    case 'le':
      return a <= b;
    default:
      return false;
  }
}

/** EqualityLookup is a filter the server can answer from an index instead of a scan. */
export interface EqualityLookup {
  /** attr is the index: userName and displayName compare ignoring case, id and externalId exactly. */
  readonly attr: 'username' | 'externalid' | 'displayname' | 'id';
  readonly value: string;
}

/**
 * equalityLookup recognises `userName eq "x"` (Users), `displayName eq "x"` (Groups), `externalId eq "x"`
 * and `id eq "x"`, in any case and URN-qualified, and returns the index to use; any other filter gets null.
 */
export function equalityLookup(filter: Filter): EqualityLookup | null {
  if (filter.op !== 'eq' || typeof filter.value !== 'string' || filter.path.sub !== undefined) return null;
  const { attr } = filter.path;
  const value = filter.value;
  if (attr === childAttr(USER_SCHEMA, 'userName')) return { attr: 'username', value };
  if (attr === childAttr(GROUP_SCHEMA, 'displayName')) return { attr: 'displayname', value };
  if (attr.name === 'externalId' && !filter.path.extension) return { attr: 'externalid', value };
  if (attr.name === 'id' && !filter.path.extension) return { attr: 'id', value };
  return null;
}
