/**
 * pages: the few HTML pages of the sign-in flow. Every value is escaped; no page loads anything
 * from elsewhere, so they render the same behind any policy.
 */
import { escapeHtml } from '../http/errors.js';

/** page wraps a body in Tollgate's minimal page shell. */
export function page(title: string, body: string): string {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<title>${escapeHtml(title)}</title>` +
    `<style>body{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em}input,button{font-size:1em;padding:.4em}` +
    `label{display:block;margin:.8em 0 .3em}.err{color:#a00}</style></head><body>${body}</body></html>\n`
  );
}

/** loginFormHtml asks for the login name, whose domain picks the identity provider. */
export function loginFormHtml(cloud: string, pendingId: string, error?: string): string {
  return page(
    'Sign in',
    `<h1>Sign in to continue</h1>` +
      `<p>Your organisation requires you to sign in before browsing (Tollgate, ${escapeHtml(cloud)}).</p>` +
      (error !== undefined ? `<p class="err">${escapeHtml(error)}</p>` : '') +
      `<form method="post" action="/login"><input type="hidden" name="r" value="${escapeHtml(pendingId)}">` +
      `<label for="u">Login name</label><input id="u" name="username" type="email" autocomplete="username" autofocus required placeholder="you@example.com">` +
      ` <button type="submit">Continue</button></form>`,
  );
}
