/**
 * format: which variant of the status page a request gets. `?format=` wins; otherwise the Accept
 * header decides by quality value (RFC 9110 §12.5.1), and HTML is the default, so a browser (or
 * `curl`, which accepts any type by default) gets the page and `curl -H 'Accept: text/plain'` gets text.
 */
import { HttpError } from '../http/errors.js';
import { renderStatusHtml, STATUS_CSP } from './page.js';
import { renderStatusText } from './text.js';
import type { StatusView } from './view.js';

/** StatusFormat is one variant of the page. */
export type StatusFormat = 'html' | 'json' | 'text';

const TYPES: readonly (readonly [StatusFormat, string])[] = [
  ['html', 'text/html'],
  ['json', 'application/json'],
  ['text', 'text/plain'],
];

/** pickStatusFormat reads `?format=` and Accept; an unknown `format` value is a 400. */
export function pickStatusFormat(format: string | null, accept: string | undefined): StatusFormat {
  if (format !== null) {
    const f = TYPES.find(([name]) => name === format.toLowerCase());
    if (f === undefined) throw new HttpError(400, 'bad_format', 'format must be html, json or text.');
    return f[0];
  }
  if (accept === undefined || accept.trim() === '') return 'html';
  // Each candidate gets the quality of the most specific range that matches it.
  let best: StatusFormat = 'html';
  let bestQ = -1;
  let bestSpecific = -1;
  const ranges = parseAccept(accept);
  for (const [name, type] of TYPES) {
    let q = -1;
    let specific = -1;
    for (const r of ranges) {
      const s = r.type === type ? 2 : r.type === `${type.split('/')[0]}/*` ? 1 : r.type === '*/*' ? 0 : -1;
      if (s > specific) {
        specific = s;
        q = r.q;
      }
    }
    // Ties go to the more specific match, then to the order of TYPES (HTML first).
    if (q > 0 && (q > bestQ || (q === bestQ && specific > bestSpecific))) {
      best = name;
      bestQ = q;
      bestSpecific = specific;
    }
  }
  return best;
}

/** parseAccept splits an Accept header into media ranges with their q (1 when absent); bounded to 32 ranges. */
function parseAccept(accept: string): { type: string; q: number }[] {
  const out: { type: string; q: number }[] = [];
  for (const part of accept.split(',').slice(0, 32)) {
    const [type, ...params] = part.split(';');
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') {
        const n = Number(v?.trim());
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
      }
    }
    out.push({ type: (type ?? '').trim().toLowerCase(), q });
  }
  return out;
}

/** statusResponse renders one variant with its headers: never cached, never sniffed, HTML under a strict CSP. */
export function statusResponse(format: StatusFormat, v: StatusView): { type: string; body: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'cache-control': 'no-store', vary: 'Accept', 'x-content-type-options': 'nosniff' };
  switch (format) {
    case 'json':
      return { type: 'application/json', body: JSON.stringify(v) + '\n', headers };
    case 'text':
      return { type: 'text/plain; charset=utf-8', body: renderStatusText(v), headers };
    default:
      // same-origin, not no-referrer: under no-referrer the Logout POST's Origin is `null`, which its CSRF check refuses.
      return { type: 'text/html; charset=utf-8', body: renderStatusHtml(v), headers: { ...headers, 'content-security-policy': STATUS_CSP, 'referrer-policy': 'same-origin' } };
  }
}
