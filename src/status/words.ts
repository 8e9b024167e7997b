/**
 * words: what the status page says, in plain words, once for both the HTML and the text variant.
 * Values stay raw here; each renderer makes them safe for its format.
 */
import type { StatusView } from './view.js';

/** HOW names the ways a request is identified, as the "Identified by" row shows them. */
export const HOW: Record<StatusView['identifiedBy'], string> = {
  cookie: 'cookie',
  surrogate: 'IP surrogate',
  exempt: 'exempt (no sign-in needed)',
  none: 'not authenticated',
};

/** headline is the page's one-line answer. */
export function headline(v: StatusView): string {
  return v.viaProxy ? 'You are accessing the web through Tollgate' : 'You are not going through Tollgate';
}

/** BY ends the sentence "Tollgate recognised this request by ...". */
const BY: Record<StatusView['identifiedBy'], string> = {
  cookie: 'its cookie on this site',
  surrogate: 'your IP address (IP surrogate)',
  exempt: 'nothing: no sign-in is needed',
  none: 'nothing',
};

const DOOR: Record<StatusView['reachedBy'], string> = {
  proxy: 'Yes',
  'control-listener': 'No — this request reached the control listener directly',
  'proxy-listener-direct': 'No — this request was sent straight to the proxy port, not as a proxy request',
};

/** Sentence is one paragraph: text pieces, with the values to emphasise marked. */
export type Sentence = readonly (string | { readonly value: string })[];

const val = (value: string) => ({ value });

/** sentences says what the page means for this person, a paragraph each. */
export function sentences(v: StatusView): Sentence[] {
  const out: Sentence[] = [];
  if (v.viaProxy) out.push(['Your request came through Tollgate node ', val(v.node), ' in the cloud ', val(v.cloud), '.']);
  else {
    out.push([
      'This request reached Tollgate node ',
      val(v.node),
      ` (cloud `,
      val(v.cloud),
      v.reachedBy === 'control-listener' ? ') on its control listener' : ') on its proxy port as a plain web request',
      ', not through the proxy. Your browser is not sending its traffic through Tollgate.',
    ]);
  }
  out.push(
    v.clientIpSource === 'peer'
      ? ['Tollgate sees your IP address as ', val(v.clientIp), ', the address your connection came from.']
      : ['Tollgate sees your IP address as ', val(v.clientIp), ', as reported in X-Forwarded-For by the trusted forwarder ', val(v.peerIp), '.'],
  );
  if (v.location === null) out.push(['Your address is in no configured location.']);
  else if (v.sublocation === null) out.push(['You are in the location ', val(v.location), '.']);
  else out.push(['You are in the location ', val(v.location), ', sublocation ', val(v.sublocation), '.']);
  if (!v.viaProxy) return out;
  const u = v.user;
  if (u !== null) {
    const name = u.displayName !== '' ? [' (', val(u.displayName), ')'] : [];
    out.push(['You are signed in as ', val(u.loginName), ...name, ' through ', val(u.idp), '. Tollgate recognised this request by ', BY[v.identifiedBy], '.']);
  } else if (v.exemptBecause === 'location') {
    out.push(['You are not signed in, and need not be: this location does not require sign-in.']);
  } else if (v.exemptBecause === 'exemption') {
    out.push(['You are not signed in, and need not be here: this page is on the authentication exemption list.']);
  } else {
    out.push(['You are not signed in. Sign-in is required here: the next web page you open takes you to the sign-in page.']);
  }
  return out;
}

/** sentenceText joins a sentence into plain text. */
export function sentenceText(s: Sentence): string {
  return s.map((p) => (typeof p === 'string' ? p : p.value)).join('');
}

/** facts are the page's table rows, label → value. Labels are stable: people and tests read them. */
export function facts(v: StatusView): [string, string][] {
  const rows: [string, string][] = [
    ['Through Tollgate', DOOR[v.reachedBy]],
    ['Your IP address', v.clientIp],
    ['IP address from', v.clientIpSource === 'peer' ? 'your connection (peer address)' : `X-Forwarded-For, from trusted forwarder ${v.peerIp}`],
    ['Location', v.location ?? 'unknown (not in any configured location)'],
    ['Sublocation', v.sublocation ?? '—'],
  ];
  if (v.viaProxy) {
    rows.push(['Authentication', v.authenticated ? 'authenticated' : v.enforceAuthentication ? 'not authenticated (required here)' : 'not authenticated (not required here)']);
    const u = v.user;
    if (u !== null) {
      rows.push(
        ['User', u.loginName],
        ['Name', u.displayName || '—'],
        ['Department', u.department || '—'],
        ['Groups', u.groups.length === 0 ? '—' : u.groups.join(', ')],
        ['Identity provider', u.idp],
        ['Signed in', `${readableTime(u.signedInAt)} (${formatAge(u.ageSeconds)} ago)`],
        ['Session expires', readableTime(u.expiresAt)],
      );
    }
    rows.push(['Identified by', HOW[v.identifiedBy]]);
  }
  rows.push(['Proxy node', v.node], ['Cloud', v.cloud], ['Config version', String(v.configVersion)]);
  return rows;
}

/** PAC_HELP says where each kind of client takes a PAC URL. */
export const PAC_HELP: readonly (readonly [string, string])[] = [
  ['Windows', 'Settings → Network & Internet → Proxy → Use setup script → Script address.'],
  ['macOS', 'System Settings → Network → (your network) → Details → Proxies → Automatic proxy configuration → URL.'],
  ['Firefox', 'Settings → General → Network Settings → Automatic proxy configuration URL.'],
  ['Chromium / Chrome', 'uses the system setting above; on Linux, start it with --proxy-pac-url=URL.'],
];

/** pacAdvice says when one of the view's PAC URLs works. */
export function pacAdvice(v: StatusView, url: string): string {
  return url.startsWith(`http://pac.${v.cloud}/`)
    ? 'needs a DNS name for it that points at a Tollgate node'
    : 'works from any address in a configured location, with no DNS set up';
}

/** readableTime shows an ISO instant as people read it, still in UTC so every node says the same. */
function readableTime(iso: string): string {
  return iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
}

function formatAge(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
