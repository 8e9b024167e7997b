/**
 * text: the status page as plain text (`?format=text`, or `Accept: text/plain` as curl can send),
 * the same words and facts as the HTML. A value cannot add or fake a line: control characters in
 * login names, groups and the like are shown as U+FFFD.
 */
import { caLines } from './certificate.js';
import type { StatusView } from './view.js';
import { facts, headline, PAC_HELP, pacAdvice, sentences, sentenceText } from './words.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** oneLine keeps a value on its line. */
export function oneLine(s: string): string {
  return s.replace(CONTROL, '\ufffd');
}

/** renderStatusText renders the text variant. */
export function renderStatusText(v: StatusView): string {
  const rows = facts(v);
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const lines = [headline(v), '', ...sentences(v).map(sentenceText), ''];
  if (!v.viaProxy) {
    lines.push('Set your automatic proxy configuration (PAC) URL to one of:');
    for (const u of v.pacUrls) lines.push(`  ${u} (${pacAdvice(v, u)})`);
    lines.push('Where to set it:');
    for (const [where, how] of PAC_HELP) lines.push(`  ${where}: ${how}`);
    lines.push('');
  }
  for (const [k, val] of rows) lines.push(`${`${k}:`.padEnd(width)} ${val}`);
  const ca = caLines(v.caCertificate);
  if (ca.length > 0) lines.push('', ...ca);
  return lines.map(oneLine).join('\n') + '\n';
}
