/**
 * html: a tagged template for the status page in which every interpolated value is escaped by the
 * one escaping function (escapeHtml), unless it is markup this module built. Login names, groups,
 * department, URLs and anything else from a session or config cannot reach the page unescaped,
 * because there is no way to interpolate a plain string without escaping it.
 */
import { escapeHtml } from '../http/errors.js';

/** SafeHtml is markup built by `html`; only it is inserted as is. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** Part is what may be interpolated: text (escaped), markup, lists of either, or nothing. */
export type Part = SafeHtml | string | number | null | undefined | false | readonly Part[];

function render(p: Part): string {
  if (p instanceof SafeHtml) return p.value;
  if (Array.isArray(p)) return (p as readonly Part[]).map(render).join('');
  if (p === null || p === undefined || p === false) return '';
  return escapeHtml(String(p));
}

/** html builds markup; `${x}` escapes x unless x is SafeHtml. */
export function html(strings: TemplateStringsArray, ...parts: Part[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < parts.length; i++) out += render(parts[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}
