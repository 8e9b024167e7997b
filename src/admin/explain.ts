/**
 * explain: why a request would be blocked, sent to sign in, or let through, answered from the active
 * config and the store with the proxy's own decision steps (src/proxy/pipeline.ts), and nothing sent
 * upstream or written anywhere.
 *
 *   GET /api/explain?url=http://site.test/&clientIp=10.1.2.3&user=alice@example.com&browser=1
 *   tollgate explain http://site.test/ --client-ip 10.1.2.3 [--user NAME] [--browser]
 *
 *   transaction (as the proxy builds it) -> each of STEPS in order, the first decisive one wins
 *     -> `lookup`: Identifier.resolve over a read-only view of the store -> identified()
 *
 * The store is read through ReadOnlyStore, so explaining never uses up a token, restarts a surrogate's
 * idle timer or marks a session seen.
 */
import { explainAnswer } from '../pac/explain.js';
import type { IncomingHttpHeaders } from 'node:http';
import { compileExemptions, HostMatcher } from '../auth/exempt.js';
import { COOKIE_NAME, Identifier } from '../auth/identify.js';
import { ipToBigInt, normalizeIp, parseCidr } from '../config/ip.js';
import type { Directory } from '../directory/directory.js';
import { HttpError } from '../http/errors.js';
import { identified, STEPS, type Decision, type Transaction } from '../proxy/pipeline.js';
import type { Runtime } from '../runtime.js';
import { Sessions } from '../sessions/session.js';
import type { ReadOp, ReadResults, ReadThrough, Store, WriteOp } from '../sessions/store.js';

/** ReadOnlyStore answers reads from a store and drops every write, so a dry run changes nothing. */
export class ReadOnlyStore implements Store {
  readonly kind: string;
  constructor(private readonly inner: Store) {
    this.kind = `${inner.kind} (read-only)`;
  }
  get(key: string): Promise<string | null> {
    return this.inner.get(key);
  }
  async set(_key: string, _value: string, _ttlMs?: number): Promise<void> {}
  async createIfAbsent(_key: string, _value: string, _ttlMs?: number): Promise<boolean> {
    return false;
  }
  /** consume reads without deleting: a dry run never uses anything up. */
  consume(key: string): Promise<string | null> {
    return this.inner.get(key);
  }
  async del(..._keys: string[]): Promise<number> {
    return 0;
  }
  async sadd(_key: string, _member: string): Promise<void> {}
  async srem(_key: string, _member: string): Promise<void> {}
  smembers(key: string, page?: { offset: number; limit: number }): Promise<string[]> {
    return this.inner.smembers(key, page);
  }
  scard(key: string): Promise<number> {
    return this.inner.scard(key);
  }
  sismember(key: string, member: string): Promise<boolean> {
    return this.inner.sismember(key, member);
  }
  readMany<const R extends readonly ReadOp[]>(reads: R): Promise<ReadResults<R>> {
    return this.inner.readMany !== undefined ? this.inner.readMany(reads) : (Promise.all(reads.map((r) => (r.op === 'get' ? this.inner.get(r.key) : this.inner.smembers(r.key)))) as Promise<ReadResults<R>>);
  }
  readVia<const R extends readonly ReadOp[]>(via: string, then: R): Promise<ReadThrough<R> | null> {
    if (this.inner.readVia === undefined) throw new Error('readVia is not supported by this store');
    return this.inner.readVia(via, then);
  }
  async incr(key: string, _ttlMs?: number): Promise<number> {
    return (Number(await this.inner.get(key)) || 0) + 1;
  }
  async atomic(_ops: WriteOp[], _ifAbsent?: string[]): Promise<boolean> {
    return false;
  }
  async publish(_channel: string, _message: string): Promise<void> {}
  subscribe(_channel: string, _handler: (message: string) => void): Promise<() => Promise<void>> {
    return Promise.resolve(async () => {});
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  async close(): Promise<void> {}
}

/** ExplainInput is the request to explain. */
export interface ExplainInput {
  readonly url: string;
  readonly clientIp: string;
  readonly user?: string;
  readonly browser: boolean;
  readonly method?: string;
}

/** ExplainStep is one pipeline step: passed, or decided (with the decision). */
export interface ExplainStep {
  readonly step: string;
  readonly outcome: 'pass' | 'decided';
  readonly decision?: Decision;
}

/** Explanation is the whole answer. */
export interface Explanation {
  readonly request: { readonly method: string; readonly url: string; readonly protocol: Transaction['protocol']; readonly host: string; readonly port: number; readonly clientIp: string; readonly browser: boolean };
  readonly location: { readonly name: string; readonly sublocation: string | null; readonly cidr: string | null; readonly enforceAuthentication: boolean } | null;
  readonly exemption: { readonly pattern: string } | null;
  readonly identity: { readonly session: string; readonly login: string; readonly by: string } | null;
  readonly steps: readonly ExplainStep[];
  /** pac is how the client's PAC file routes this URL (DIRECT means the proxy never sees it); null when no PAC is built. */
  readonly pac: { readonly file: string; readonly answer: string; readonly rule: string } | null;
  /** inspection is what the inspection rules decide for a tunnel (null for plain HTTP, or without inspection config). */
  readonly inspection: { readonly inspect: boolean; readonly reason: string } | null;
  readonly decision: Decision;
  /** outcome is what the client would get: a status, and the access log's action and reason. */
  readonly outcome: { readonly status: number | null; readonly action: string; readonly reason: string; readonly text: string };
}

/** transactionFor builds the transaction the proxy would for this request (explicit-proxy door). */
function transactionFor(rt: Runtime, input: ExplainInput): Transaction {
  let u: URL;
  try {
    u = new URL(input.url);
  } catch {
    throw new HttpError(400, 'bad_url', 'url must be an absolute http:// or https:// URL.');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') throw new HttpError(400, 'bad_url', 'url must be an absolute http:// or https:// URL without credentials.');
  const clientIp = normalizeIp(input.clientIp);
  if (ipToBigInt(clientIp) === null) throw new HttpError(400, 'bad_client_ip', 'clientIp must be an IP address.');
  const tunnel = u.protocol === 'https:';
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(u.port) || (tunnel ? 443 : 80);
  return {
    rt,
    startMs: 0,
    protocol: tunnel ? 'TUNNEL' : 'HTTP',
    peerIp: clientIp,
    clientIp,
    match: rt.locator.lookup(clientIp),
    method: tunnel ? 'CONNECT' : (input.method ?? 'GET').toUpperCase(),
    url: tunnel ? `${host}:${port}` : u.href,
    host,
    port,
    login: '',
    department: '',
    action: 'allowed',
    reason: '',
    identity: null,
  };
}

/** matchingCidr names the longest configured prefix that placed the client (sublocation first). */
function matchingCidr(tx: Transaction): string | null {
  const m = tx.match;
  if (m === null) return null;
  const ip = ipToBigInt(tx.clientIp);
  let best: { cidr: string; prefix: number } | null = null;
  for (const c of m.sublocation?.ips ?? m.location.ips) {
    const p = parseCidr(c);
    if (typeof p === 'string' || ip === null || p.family !== ip.family || ip.value < p.start || ip.value > p.end) continue;
    if (best === null || p.prefix > best.prefix) best = { cidr: c, prefix: p.prefix };
  }
  return best?.cidr ?? null;
}

/** ssoHostOf is an SSO URL's host, lower-case; '' when it cannot be parsed. */
export function ssoHostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return ''; // config validation admits only http(s) URLs; one the URL parser still refuses exempts nothing
  }
}

/** matchingExemption names the pattern that exempts the request, if one does. */
function matchingExemption(tx: Transaction): string | null {
  const ex = tx.rt.config.authentication.exemptions;
  const sso = tx.rt.config.idps.map((p) => ssoHostOf(p.ssoUrl));
  for (const h of [...ex.hosts, ...sso.filter((s) => s !== '')]) if (new HostMatcher([h]).matches(tx.host)) return sso.includes(h) && !ex.hosts.includes(h) ? `${h} (an IdP's SSO host)` : h;
  if (tx.protocol === 'HTTP') for (const p of ex.urls) if (compileExemptions([], [p], []).urls.matches(tx.host, tx.url)) return p;
  return null;
}

/** userCookie finds a cookie one of the user's sessions has on this host, as their browser would send it. */
async function userCookie(sessions: Sessions, store: Store, directory: Directory, rt: Runtime, user: string, host: string): Promise<string | null> {
  for (const idp of rt.idps.keys()) {
    const u = await directory.lookupLogin(`${rt.config.orgId}/${idp}`, user);
    if (u === null) continue;
    for (const sid of await sessions.sessionsOf(u.id)) {
      for (const cookie of await store.smembers(`{s:${sid}}:cookies`)) {
        if ((await sessions.cookieSession(cookie, host)) === sid) return cookie;
      }
    }
  }
  return null;
}

const OUTCOMES: Record<Decision['kind'], (d: Decision, tx: Transaction) => Explanation['outcome']> = {
  deny: (d) => {
    const x = d as Extract<Decision, { kind: 'deny' }>;
    return { status: x.status, action: 'blocked', reason: x.code, text: x.message };
  },
  forward: (_d, tx) => ({ status: null, action: tx.action, reason: '', text: tx.action === 'exempt' ? 'forwarded without identity (exempt)' : tx.login !== '' ? `forwarded as ${tx.login}` : 'forwarded (sign-in not required here)' }),
  login: () => ({ status: 307, action: 'auth-redirect', reason: 'login_required', text: 'sent to the gateway to sign in' }),
  own: () => ({ status: null, action: 'own-host', reason: '', text: "answered by Tollgate itself (one of the cloud's hosts)" }),
  token: () => ({ status: 307, action: 'auth-redirect', reason: 'cookie_planted', text: 'the one-time token would be swapped for a cookie' }),
  lookup: () => ({ status: null, action: 'allowed', reason: '', text: 'the store must be asked' }),
  inspect: (d) => ({
    status: 200,
    action: 'allowed',
    reason: `inspected_${(d as Extract<Decision, { kind: 'inspect' }>).reason}`,
    text: 'the tunnel would be decrypted with our CA, and each request in it decided on its own',
  }),
};

/** explain runs the proxy's steps for one request, from memory and the store, changing nothing. */
export async function explain(deps: { store: Store; directory: Directory }, rt: Runtime, input: ExplainInput): Promise<Explanation> {
  const store = new ReadOnlyStore(deps.store);
  const sessions = new Sessions(store);
  const identifier = new Identifier(sessions);
  const tx = transactionFor(rt, input);
  const headers: IncomingHttpHeaders = input.browser
    ? { 'user-agent': 'Mozilla/5.0 (Tollgate explain)', accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
    : { 'user-agent': 'tollgate-explain/1' };
  if (input.user !== undefined && input.user !== '' && tx.protocol === 'HTTP') {
    const cookie = await userCookie(sessions, store, deps.directory, rt, input.user, tx.host);
    if (cookie !== null) headers.cookie = `${COOKIE_NAME}=${cookie}`;
  }
  const steps: ExplainStep[] = [];
  let decision: Decision = { kind: 'forward' };
  for (const step of STEPS) {
    let d = step(tx, headers, identifier);
    if (d === null) {
      steps.push({ step: step.name, outcome: 'pass' });
      continue;
    }
    // As the proxy does when memory does not know the client: ask the store, then finish the step.
    if (d.kind === 'lookup') d = identified(tx, await identifier.resolve(tx, d.cookies, d.browser, d.navigation), headers);
    steps.push({ step: step.name, outcome: 'decided', decision: d });
    decision = d;
    break;
  }
  const m = tx.match;
  const inspectDecision = tx.protocol === 'TUNNEL' && rt.inspection !== null ? rt.inspection.decide(tx.host, m) : null;
  return {
    request: { method: tx.method, url: tx.url, protocol: tx.protocol, host: tx.host, port: tx.port, clientIp: tx.clientIp, browser: input.browser },
    location: m === null ? null : { name: m.location.name, sublocation: m.sublocation?.name ?? null, cidr: matchingCidr(tx), enforceAuthentication: m.enforceAuthentication },
    exemption: tx.action === 'exempt' ? { pattern: matchingExemption(tx) ?? '(unknown)' } : null,
    identity: tx.identity === null ? null : { session: tx.identity.session.id, login: tx.identity.session.loginName, by: tx.identity.by },
    steps,
    pac: await pacRouting(rt, tx, input.url),
    inspection: inspectDecision === null ? null : { inspect: inspectDecision.inspect, reason: inspectDecision.reason },
    decision,
    outcome: OUTCOMES[decision.kind](decision, tx),
  };
}

/**
 * pacRouting runs the PAC file this client would be served (its location's, or the default) on the
 * URL, in the same sandbox activation checks it in, and names the rule that answered.
 */
async function pacRouting(rt: Runtime, tx: Transaction, url: string): Promise<Explanation['pac']> {
  const v = rt.pac.forLocation(tx.match?.location.name ?? null);
  if (v === null) return null;
  // The sandbox loads when an explanation asks for it, not with the proxy.
  const { PacEvaluator } = await import('../pac/evaluate.js');
  const ev = await PacEvaluator.compile(rt.pac.text(v, tx.clientIp), { clientIp: tx.clientIp, hosts: rt.hosts });
  try {
    const a = await ev.run(url);
    return { file: v.label, answer: String(a.result), rule: explainAnswer(a, v.rules) };
  } finally {
    ev.dispose();
  }
}
