/**
 * page: the per-user status page at `ip.<cloud>`, in the spirit of ip.zscaler.com.
 *
 * It tells the person (and ops reading over their shoulder) how Tollgate sees this request: the
 * client address, the location and sublocation it fell into, the node, and the cloud.
 */
import { escapeHtml } from '../http/errors.js';

/** StatusView is what the page shows; later features add identity fields. */
export interface StatusView {
  readonly cloud: string;
  readonly node: string;
  /** The worker process that answered, when the node runs several (else null). */
  readonly worker: { readonly id: number; readonly pid: number } | null;
  readonly clientIp: string;
  readonly viaProxy: boolean;
  readonly location: string | null;
  readonly sublocation: string | null;
  readonly enforceAuthentication: boolean;
  readonly configVersion: number;
  readonly authenticated: boolean;
  /** How this request was attributed. */
  readonly identifiedBy: 'cookie' | 'surrogate' | 'exempt' | 'none';
  readonly user: StatusUser | null;
  /** The logout form's CSRF token, when signed in. */
  readonly logoutCsrf: string | null;
}

/** StatusUser is the signed-in user, as the session knows them. */
export interface StatusUser {
  readonly loginName: string;
  readonly displayName: string;
  readonly department: string;
  readonly groups: readonly string[];
  readonly idp: string;
  readonly signedInAt: string;
  readonly expiresAt: string;
  readonly ageSeconds: number;
}

const HOW: Record<StatusView['identifiedBy'], string> = {
  cookie: 'cookie',
  surrogate: 'IP surrogate',
  exempt: 'exempt (no identity needed)',
  none: 'not authenticated',
};

/** renderStatusHtml renders the page; every value is escaped. */
export function renderStatusHtml(v: StatusView): string {
  const rows: [string, string][] = [
    ['Through Tollgate', v.viaProxy ? 'Yes — your request came through the proxy' : 'No — you reached the control listener directly'],
    ['Your IP address', v.clientIp],
    ['Location', v.location ?? 'unknown (not in any configured location)'],
    ['Sublocation', v.sublocation ?? '—'],
    ['Authentication', v.authenticated ? 'authenticated' : v.enforceAuthentication ? 'not authenticated (required here)' : 'not authenticated (not required here)'],
    ...(v.user === null
      ? []
      : ([
          ['User', v.user.loginName],
          ['Name', v.user.displayName || '—'],
          ['Department', v.user.department || '—'],
          ['Groups', v.user.groups.length === 0 ? '—' : v.user.groups.join(', ')],
          ['Identity provider', v.user.idp],
          ['Signed in', `${v.user.signedInAt} (${formatAge(v.user.ageSeconds)} ago)`],
          ['Session expires', v.user.expiresAt],
        ] as [string, string][])),
    ['Identified by', HOW[v.identifiedBy]],
    ['Proxy node', v.node],
    ['Cloud', v.cloud],
    ['Config version', String(v.configVersion)],
  ];
  const body = rows.map(([k, val]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(val)}</td></tr>`).join('');
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>Tollgate status</title>` +
    `<style>body{font-family:sans-serif;max-width:44em;margin:2em auto}th{text-align:left;padding-right:2em}td,th{padding:.3em}</style>` +
    `</head><body><h1>${v.viaProxy ? 'You are accessing the web through Tollgate' : 'Tollgate'}</h1>` +
    `<table>${body}</table>` +
    (v.logoutCsrf === null
      ? ''
      : `<form method="post" action="/logout"><input type="hidden" name="csrf" value="${escapeHtml(v.logoutCsrf)}"><button type="submit">Logout</button></form>`) +
    `</body></html>\n`
  );
}

function formatAge(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
