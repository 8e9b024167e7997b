/**
 * dashboard: the ops dashboard, HTML at `/` on the control listener. Small, server-rendered, no
 * script; pages refresh themselves.
 *
 *   GET  /signin  POST /signin (admin token) -> session cookie (HttpOnly, SameSite=Strict) -> /
 *   GET  /        overview: nodes and their config versions, store latency, requests, sessions per location and IdP
 *   GET  /users   search users; each one's sessions, with Revoke   (POST /sessions/revoke)
 *   GET  /config  the draft, its diff, Save and Activate           (POST /config/draft, POST /config/activate)
 *   POST /signout
 *
 * Every form carries the session's CSRF token, and a POST must also come from this origin (Origin,
 * Fetch Metadata): SameSite=Strict already keeps the cookie off cross-site requests, these are the
 * second and third locks. The session lives in the store, so any node's dashboard shows the same.
 * The loopback-only rule of the admin API holds here too.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { sameBytes } from '../auth/gateway.js';
import { readCookie } from '../auth/identify.js';
import { escapeHtml, HttpError } from '../http/errors.js';
import { Router, sendBody, sendRedirect } from '../http/router.js';
import { readBody } from '../scim/body.js';
import { Audit } from './audit.js';
import { unifiedDiff } from './config.js';
import type { AdminCtx, AdminDeps } from './routes.js';
import { listSessions, revoke } from './sessions.js';
import { add, ZERO_COUNTS } from './nodes.js';
import type { AdminTokens } from './tokens.js';
import { listUsers, parseUserFilter } from './users.js';

/** DASH_COOKIE is the dashboard's session cookie. */
export const DASH_COOKIE = 'tollgate_admin';
/** DASH_SESSION_MS is how long a dashboard sign-in lasts. */
const DASH_SESSION_MS = 8 * 3600_000;
const LOOPBACK = /^(127\.|::1$)/;


interface DashSession {
  readonly name: string;
  readonly csrf: string;
}

/** DashboardDeps is what the dashboard needs besides the admin routes' deps. */
export interface DashboardDeps extends AdminDeps {
  readonly adminTokens: AdminTokens;
  readonly log: Logger;
}

const CSS = `body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#222}header{background:#123;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
header a{color:#fff}main{padding:1em;max-width:70em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
.err{color:#a00}.ok{color:#070}textarea{width:100%;height:24em;font:13px monospace}pre{background:#f4f4f4;padding:.5em;overflow:auto}form.inline{display:inline}
@media(max-width:40em){td,th{display:block}}`;

function page(title: string, body: string, opts: { signedIn?: DashSession; refresh?: number } = {}): string {
  const nav = opts.signedIn
    ? `<nav><a href="/">Overview</a> <a href="/users">Users</a> <a href="/config">Config</a></nav><span>${escapeHtml(opts.signedIn.name)}</span>` +
      `<form class="inline" method="post" action="/signout"><input type="hidden" name="csrf" value="${opts.signedIn.csrf}"><button>Sign out</button></form>`
    : '';
  return (
    `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    (opts.refresh ? `<meta http-equiv="refresh" content="${opts.refresh}">` : '') +
    `<title>${escapeHtml(title)} · Tollgate</title><style>${CSS}</style></head><body><header><strong>Tollgate</strong>${nav}</header><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>\n`
  );
}

const html = (req: IncomingMessage, res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) =>
  sendBody(req, res, status, 'text/html; charset=utf-8', body, { 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'", ...headers });

/** form reads a urlencoded form body (bounded: a config document fits). */
async function form(req: IncomingMessage): Promise<URLSearchParams> {
  try {
    return new URLSearchParams((await readBody(req, 1024 * 1024, 10_000)).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_request', 'The form could not be read.');
  }
}

/** dashboardRoutes builds the dashboard's route table. */
export function dashboardRoutes(deps: DashboardDeps): Router<AdminCtx> {
  const audit = new Audit(deps.log);
  const key = (sid: string) => `admin:dash:${sid}`;

  /** loopbackOnly: the dashboard, like the API, answers loopback peers addressed by a loopback name. */
  const loopbackOnly = (req: IncomingMessage, ctx: AdminCtx): void => {
    if (!LOOPBACK.test(ctx.peerIp)) throw new HttpError(403, 'admin_loopback_only', 'The dashboard answers loopback clients only.');
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    if (!(host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host))) throw new HttpError(403, 'admin_host', 'Open the dashboard by a loopback address.');
  };
  /** sameOrigin: a POST must come from one of this dashboard's own pages. */
  const sameOrigin = (req: IncomingMessage): void => {
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if ((origin !== undefined && origin !== `http://${req.headers.host}`) || (site !== undefined && site !== 'same-origin')) {
      throw new HttpError(403, 'csrf_failed', 'Dashboard forms must come from the dashboard.');
    }
  };
  const session = async (req: IncomingMessage): Promise<DashSession | null> => {
    const sid = readCookie(req.headers.cookie, DASH_COOKIE);
    if (sid === null || !/^[A-Za-z0-9_-]{43}$/.test(sid)) return null;
    const raw = await deps.store.get(key(sid));
    return raw === null ? null : (JSON.parse(raw) as DashSession);
  };
  /** view wraps a page handler: loopback, a session, or off to sign in. */
  const view = (h: (req: IncomingMessage, res: ServerResponse, ctx: AdminCtx, s: DashSession) => Promise<void>) => async (req: IncomingMessage, res: ServerResponse, ctx: AdminCtx) => {
    loopbackOnly(req, ctx);
    const s = await session(req);
    if (s === null) return sendRedirect(res, 303, '/signin');
    await h(req, res, ctx, s);
  };
  /** act wraps a form POST: loopback, same origin, a session, its CSRF token; then audits the outcome. */
  const act = (action: string, h: (req: IncomingMessage, res: ServerResponse, ctx: AdminCtx, s: DashSession, f: URLSearchParams) => Promise<Record<string, unknown>>) => async (req: IncomingMessage, res: ServerResponse, ctx: AdminCtx) => {
    let who: string | null = null;
    try {
      loopbackOnly(req, ctx);
      sameOrigin(req);
      const s = await session(req);
      if (s === null) throw new HttpError(401, 'admin_session_missing', 'Sign in to the dashboard first.');
      const f = await form(req);
      if (!sameBytes(f.get('csrf') ?? '', s.csrf)) throw new HttpError(403, 'csrf_failed', 'The form is stale or forged; reload the page.');
      who = s.name;
      const detail = await h(req, res, ctx, s, f);
      audit.write({ who, action, outcome: 'ok', status: res.statusCode, peer: ctx.peerIp, detail: { via: 'dashboard', ...detail } });
    } catch (err) {
      audit.thrown(who, action, ctx.peerIp, err);
      throw err;
    }
  };

  const signinPage = (error = '') =>
    page('Sign in', `${error ? `<p class="err">${escapeHtml(error)}</p>` : ''}<form method="post" action="/signin"><p><label>Admin token<br><input type="password" name="token" size="60" autocomplete="off" required></label></p><p><button>Sign in</button></p></form><p>Create a token with <code>tollgate admin token</code>.</p>`);

  return new Router<AdminCtx>()
    .on('GET', '/signin', async (req, res, ctx) => {
      loopbackOnly(req, ctx);
      html(req, res, 200, signinPage());
    })
    .on('POST', '/signin', async (req, res, ctx) => {
      loopbackOnly(req, ctx);
      sameOrigin(req);
      const name = await deps.adminTokens.verify((await form(req)).get('token') ?? '');
      if (name === null) {
        audit.write({ who: null, action: 'dashboard.signin', outcome: 'refused', status: 401, code: 'admin_token_invalid', peer: ctx.peerIp });
        return html(req, res, 401, signinPage('That is not a current admin token.'));
      }
      const sid = randomBytes(32).toString('base64url');
      await deps.store.set(key(sid), JSON.stringify({ name, csrf: randomBytes(24).toString('base64url') } satisfies DashSession), DASH_SESSION_MS);
      audit.write({ who: name, action: 'dashboard.signin', outcome: 'ok', status: 303, peer: ctx.peerIp });
      sendRedirect(res, 303, '/', { 'set-cookie': `${DASH_COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${DASH_SESSION_MS / 1000}` });
    })
    .on(
      'POST',
      '/signout',
      act('dashboard.signout', async (req, res) => {
        const sid = readCookie(req.headers.cookie, DASH_COOKIE)!;
        await deps.store.del(key(sid));
        sendRedirect(res, 303, '/signin', { 'set-cookie': `${DASH_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` });
        return {};
      }),
    )
    .on(
      'GET',
      '/',
      view(async (req, res, ctx, s) => {
        const t0 = performance.now();
        let storeLine: string;
        try {
          await deps.store.ping();
          storeLine = `<span class="ok">${escapeHtml(deps.store.kind)} reachable, ${(performance.now() - t0).toFixed(1)} ms</span>`;
        } catch {
          storeLine = `<span class="err">${escapeHtml(deps.store.kind)} not reachable</span>`;
        }
        const nodes = await deps.activator.nodes();
        const byLoc = new Map<string, number>();
        const byIdp = new Map<string, number>();
        for await (const x of deps.sessions.scan()) {
          byLoc.set(x.location, (byLoc.get(x.location) ?? 0) + 1);
          byIdp.set(x.idp, (byIdp.get(x.idp) ?? 0) + 1);
        }
        const counts = (m: Map<string, number>) => [...m].map(([k, n]) => `<tr><td>${escapeHtml(k)}</td><td>${n}</td></tr>`).join('') || '<tr><td colspan="2">none</td></tr>';
        const rows = nodes
          .map((n) => `<tr><td>${escapeHtml(n.name)}</td><td>v${n.configVersion}${n.configFailed ? ` <span class="err">cannot build v${n.configFailed.version}: ${escapeHtml(n.configFailed.errors.join('; '))}</span>` : ''}</td><td>${n.requests}</td><td>${n.errors}</td><td>${escapeHtml(n.startedAt)}</td><td>${escapeHtml(n.seenAt)}</td></tr>`)
          .join('');
        const requests = nodes.reduce((a, n) => a + n.requests, 0);
        const rps = nodes.reduce((a, n) => a + (n.rps ?? 0), 0);
        const hour = nodes.reduce((a, n) => (n.lastHour ? add(a, n.lastHour) : a), ZERO_COUNTS);
        const ranked = (tally: Readonly<Record<string, number>>, top = 10) =>
          Object.entries(tally).sort((x, y) => y[1] - x[1]).slice(0, top).map(([k, n]) => `<tr><td>${escapeHtml(k)}</td><td>${n}</td></tr>`).join('') || '<tr><td colspan="2">none</td></tr>';
        const signIns = ranked(hour.signIns, Infinity);
        const blockedBy = ranked(hour.blockedBy);
        html(
          req,
          res,
          200,
          page(
            'Overview',
            `<p>Config v${ctx.rt.version} on this node (${escapeHtml(ctx.rt.nodeName)}). Store: ${storeLine}. Requests on all nodes: ${requests} (${rps.toFixed(1)}/s). Active sessions: ${[...byLoc.values()].reduce((a, n) => a + n, 0)}.</p>` +
              `<h2>Nodes</h2><table><tr><th>Node</th><th>Config</th><th>Requests</th><th>5xx</th><th>Started</th><th>Last heartbeat</th></tr>${rows}</table>` +
              `<h2>Last hour, all nodes</h2><p>${hour.requests} requests, ${hour.blocked} blocked, ${hour.errors} answered 5xx, ${hour.scim} SCIM operations.</p>` +
              `<table><tr><th>Sign-ins by outcome</th><th>Count</th></tr>${signIns}</table>` +
              `<table><tr><th>Top reasons for blocking</th><th>Count</th></tr>${blockedBy}</table>` +
              `<h2>Sessions per location</h2><table><tr><th>Location</th><th>Sessions</th></tr>${counts(byLoc)}</table>` +
              `<h2>Sessions per IdP</h2><table><tr><th>IdP</th><th>Sessions</th></tr>${counts(byIdp)}</table>`,
            { signedIn: s, refresh: 10 },
          ),
        );
      }),
    )
    .on(
      'GET',
      '/users',
      view(async (req, res, ctx, s) => {
        const q = new URL(req.url ?? '/', 'http://x').searchParams;
        const term = (q.get('q') ?? '').slice(0, 256);
        const users = await listUsers(deps.directory, ctx.rt.config.orgId, [...ctx.rt.idps.keys()], parseUserFilter(new URLSearchParams(term ? { name: term } : {})), { offset: 0, limit: 100 });
        const rows: string[] = [];
        for (const u of users.users) {
          const sess = await listSessions(deps.sessions, { user: u.userName.toLowerCase(), idp: u.idp.toLowerCase() }, { offset: 0, limit: 50 });
          const list = sess.sessions
            .map(
              (x) =>
                `<li>${escapeHtml(x.location)} ${escapeHtml(x.clientIp)}, ${x.lastSeen ? `seen ${escapeHtml(x.lastSeen)} by ${escapeHtml(x.identifiedBy ?? '')}` : 'not seen yet'} ` +
                `<form class="inline" method="post" action="/sessions/revoke"><input type="hidden" name="csrf" value="${s.csrf}"><input type="hidden" name="session" value="${escapeHtml(x.id)}"><input type="hidden" name="back" value="${escapeHtml(term)}"><button>Revoke</button></form></li>`,
            )
            .join('');
          rows.push(`<tr><td>${escapeHtml(u.userName)}</td><td>${escapeHtml(u.idp)}</td><td>${escapeHtml(u.source)}</td><td>${u.active ? 'active' : 'inactive'}</td><td>${escapeHtml(u.department ?? '')}</td><td>${escapeHtml(u.groups.join(', '))}</td><td><ul>${list || '<li>no session</li>'}</ul></td></tr>`);
        }
        html(
          req,
          res,
          200,
          page(
            'Users',
            `<form method="get" action="/users"><input name="q" value="${escapeHtml(term)}" placeholder="login or display name"> <button>Search</button></form>` +
              `<p>${users.total} user(s)${users.total > users.users.length ? `, the first ${users.users.length} shown` : ''}.</p>` +
              `<table><tr><th>Login</th><th>IdP</th><th>Source</th><th>State</th><th>Department</th><th>Groups</th><th>Sessions</th></tr>${rows.join('')}</table>`,
            { signedIn: s },
          ),
        );
      }),
    )
    .on(
      'POST',
      '/sessions/revoke',
      act('sessions.revoke', async (_req, res, ctx, _s, f) => {
        const id = f.get('session') ?? '';
        const n = await revoke(deps, ctx.rt, { session: id });
        const back = f.get('back') ?? '';
        sendRedirect(res, 303, `/users${back ? `?q=${encodeURIComponent(back)}` : ''}`);
        return { target: 'session', revoked: n };
      }),
    )
    .on(
      'GET',
      '/config',
      view(async (req, res, _ctx, s) => html(req, res, 200, await configPage(deps, s, []))),
    )
    .on(
      'POST',
      '/config/draft',
      act('config.stage', async (req, res, _ctx, s, f) => {
        await deps.activator.versions.saveDraft((f.get('text') ?? '').replace(/\r\n/g, '\n'), s.name);
        sendRedirect(res, 303, '/config');
        return {};
      }),
    )
    .on(
      'POST',
      '/config/activate',
      act('config.activate', async (req, res, _ctx, s) => {
        const d = await deps.activator.versions.draft();
        if (d === null) {
          html(req, res, 409, await configPage(deps, s, ['Nothing is staged.']));
          return { outcome: 'no draft' };
        }
        const r = await deps.activate({ text: d.text, who: s.name, source: 'draft' });
        if (!r.ok) {
          html(req, res, 422, await configPage(deps, s, r.errors));
          return { errors: r.errors.length };
        }
        if ((await deps.activator.versions.draft())?.text === d.text) await deps.activator.versions.discardDraft();
        sendRedirect(res, 303, `/config?activated=${r.version}`);
        return { version: r.version };
      }),
    );
}

/** configPage shows the active version, the draft, its diff, and the errors of a refused activation. */
async function configPage(deps: DashboardDeps, s: DashSession, errors: readonly string[]): Promise<string> {
  const v = deps.activator.versions;
  const [active, draft] = await Promise.all([v.active(), v.draft()]);
  const text = draft?.text ?? active?.text ?? '';
  const diff = draft !== null && active !== null ? await unifiedDiff(active.text, draft.text, `active v${active.version}`, 'draft') : '';
  const errs = errors.length > 0 ? `<div class="err"><p>Activation refused; the running config is unchanged:</p><ul>${errors.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul></div>` : '';
  return page(
    'Config',
    `<p>Active: v${active?.version ?? '?'}${active ? `, activated by ${escapeHtml(active.activatedBy)} at ${escapeHtml(active.activatedAt)}` : ''}. ${draft ? `Draft saved by ${escapeHtml(draft.updatedBy)} at ${escapeHtml(draft.updatedAt)}.` : 'No draft.'}</p>${errs}` +
      `<form method="post" action="/config/draft"><input type="hidden" name="csrf" value="${s.csrf}"><textarea name="text" spellcheck="false">${escapeHtml(text)}</textarea><p><button>Save draft</button></p></form>` +
      (draft ? `<h2>Diff</h2><pre>${escapeHtml(diff)}</pre><form method="post" action="/config/activate"><input type="hidden" name="csrf" value="${s.csrf}"><button>Activate</button></form>` : ''),
    { signedIn: s },
  );
}
