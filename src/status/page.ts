/**
 * page: the status page at `ip.<cloud>` as HTML, in the spirit of ip.zscaler.com.
 *
 * It tells the person (and ops reading over their shoulder) in plain words whether this request
 * came through Tollgate, the client address and how it was learnt, the location, and who they are
 * signed in as, then the same facts as a table. No script, no framework, one small stylesheet that
 * the Content-Security-Policy allows by its hash. Every value goes through `html`, which escapes it.
 */
import { createHash } from 'node:crypto';
import { caSection } from './certificate.js';
import { html, SafeHtml } from './html.js';
import type { StatusView } from './view.js';
import { facts, headline, PAC_HELP, pacAdvice, sentences, type Sentence } from './words.js';

export type { StatusView, StatusUser } from './view.js';

const CSS = [
  ':root{color-scheme:light dark;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}',
  'body{max-width:44rem;margin:0 auto;padding:1rem}',
  'h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.75rem 0 .5rem}',
  '.state{padding:.75rem 1rem;border-left:.4rem solid;border-radius:.3rem}.yes{border-color:#1a7f37;background:#1a7f3718}.no{border-color:#bf5a00;background:#bf5a0018}',
  '.state p{margin:.35rem 0}',
  'table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid #8885}',
  'th{font-weight:600;width:36%}td,code{overflow-wrap:anywhere}',
  'button{font:inherit;padding:.55rem 1.4rem;margin-top:1rem;border-radius:.3rem;cursor:pointer}',
  'li{margin:.3rem 0}',
  '@media (max-width:34rem){th,td{display:block;width:auto;border:0;padding:.05rem 0}th{padding-top:.6rem;font-size:.9rem;opacity:.8}tr{display:block;border-bottom:1px solid #8885;padding-bottom:.4rem}}',
].join('');

/** STATUS_CSP allows nothing but the page's own stylesheet and its logout form. */
export const STATUS_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

function paragraph(s: Sentence): SafeHtml {
  return html`<p>${s.map((p) => (typeof p === 'string' ? p : html`<strong>${p.value}</strong>`))}</p>`;
}

/** renderStatusHtml renders the page. */
export function renderStatusHtml(v: StatusView): string {
  const title = headline(v);
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate status</title><style>${new SafeHtml(CSS)}</style></head>
<body><main>
<h1>${title}</h1>
<div class="state ${v.viaProxy ? 'yes' : 'no'}" role="status">${sentences(v).map(paragraph)}</div>
${v.logoutCsrf === null ? null : html`<form method="post" action="/logout"><input type="hidden" name="csrf" value="${v.logoutCsrf}"><button type="submit">Logout</button></form>`}
${v.viaProxy ? null : pacSection(v)}
<h2 id="details">Details</h2>
<table aria-labelledby="details"><tbody>${facts(v).map(([k, val]) => html`<tr><th scope="row">${k}</th><td>${val}</td></tr>`)}</tbody></table>
${caSection(v.caCertificate)}
</main></body></html>
`;
  return page.value;
}

/** pacSection tells a person who is not going through Tollgate how to start. */
function pacSection(v: StatusView): SafeHtml {
  return html`<section aria-labelledby="pac"><h2 id="pac">How to use Tollgate</h2>
<p>Set your browser's or system's automatic proxy configuration (PAC) URL to one of:</p>
<ul>${v.pacUrls.map((u) => html`<li><code>${u}</code> — ${pacAdvice(v, u)}</li>`)}</ul>
<p>Where to set it:</p>
<ul>${PAC_HELP.map(([where, how]) => html`<li><strong>${where}:</strong> ${how}</li>`)}</ul>
<p>Then open <a href="http://ip.${v.cloud}/">http://ip.${v.cloud}/</a> again.</p>
</section>`;
}
