/**
 * nss: the access log in the shape of a ZIA NSS web-log feed, for SIEMs that already parse one.
 *
 *   %s{time}  %s{login}  %s{proto}  %s{eurl}  %s{action}  %s{reason}  %d{reqsize}  %d{respsize}  %d{stime}
 *   %s{location}  %s{dept}  %s{cip}  %s{reqmethod}  %s{respcode}
 *
 * One line per transaction, the fields in that order, tab-delimited (the NSS guidelines' advice: values
 * may hold spaces and commas). As NSS does, URL bytes at or below 0x20 or at or above 0x7F are written
 * %HH, and a tab or line break in any other field is too, so a value can never split a line or a
 * field. An empty value is written `None`, as NSS writes it.
 */
import type { AccessEntry } from './log.js';

/** NSS_FIELDS names the columns, in order, as the README documents them. */
export const NSS_FIELDS = ['time', 'login', 'proto', 'eurl', 'action', 'reason', 'reqsize', 'respsize', 'stime', 'location', 'dept', 'cip', 'reqmethod', 'respcode'] as const;

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const PROTO: Record<AccessEntry['protocol'], string> = { HTTP: 'HTTP', TUNNEL: 'SSL', WS: 'HTTP', SSL: 'HTTPS' };
const ACTION: Record<AccessEntry['action'], string> = {
  allowed: 'Allowed',
  blocked: 'Blocked',
  exempt: 'Allowed',
  'auth-redirect': 'Blocked',
  'own-host': 'Allowed',
  error: 'Blocked',
};

/** nssTime is NSS's %s{time}: `Mon Jun 20 15:29:11 2022`, in UTC (the feed's time zone). */
export function nssTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return 'None';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** encodeUrl hex-encodes what NSS encodes in URLs: every byte <= 0x20 or >= 0x7F, as %HH. */
export function encodeUrl(url: string): string {
  let out = '';
  for (const b of Buffer.from(url, 'utf8')) out += b <= 0x20 || b >= 0x7f ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  return out;
}

/** field writes one non-URL value: control characters as %HH (so no value can break the line), empty as None. */
function field(v: string): string {
  if (v === '') return 'None';
  return v.replace(/[\x00-\x1f\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/**
 * nssLine renders one access entry. `eurl` is host and path without the scheme, as NSS writes it
 * (`ebay.com/`); a CONNECT tunnel is its host and port.
 */
export function nssLine(e: AccessEntry): string {
  const eurl = e.url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  return [
    nssTime(e.time),
    field(e.login),
    PROTO[e.protocol] ?? field(e.protocol),
    e.url === '' ? 'None' : encodeUrl(eurl),
    ACTION[e.action] ?? field(e.action),
    field(e.reason),
    String(e.reqBytes),
    String(e.respBytes),
    String(Math.round(e.durationMs)),
    field(e.sublocation !== '' ? `${e.location}->${e.sublocation}` : e.location),
    field(e.department),
    field(e.clientIp),
    field(e.method),
    String(e.status),
  ].join('\t');
}
