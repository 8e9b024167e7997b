/**
 * identify: the extra CPU per proxied request that identification costs for a signed-in user when
 * memory has the answer (LRU hit), against a location that does not enforce authentication.
 * `node --import tsx bench/identify.ts [--n 500000] [--rounds 5]`
 *
 *   per request, as the proxy runs it:  new transaction + headers -> decide(pipeline) -> strip our cookie
 *   scenarios: open      location without enforcement (the baseline)
 *              cookie    enforcing location, our domain cookie on the request, session in the LRU
 *              surrogate enforcing location with the IP surrogate, a non-browser client, session in the LRU
 *
 * Everything is real: the runtime is built from a validated config with a real IdP (certificate
 * parsed at activation), sessions, cookies and surrogates live in an embedded store behind the
 * TieredStore LRU, and each scenario is checked to end in `forward` with the user attached before
 * it is timed. CPU is process.cpuUsage() over n requests, median of the rounds; the target is an
 * extra ≤ 10 µs per request for cookie and surrogate over open.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { IncomingHttpHeaders } from 'node:http';
import { validateConfig } from '../src/config/validate.js';
import { prepareIdps } from '../src/auth/idps.js';
import { Identifier, COOKIE_NAME, stripOwnCookie } from '../src/auth/identify.js';
import { buildRuntime, type Runtime } from '../src/runtime.js';
import { decide, type Transaction } from '../src/proxy/pipeline.js';
import { EmbeddedStore } from '../src/sessions/embedded.js';
import { TieredStore } from '../src/sessions/tiered.js';
import { Sessions } from '../src/sessions/session.js';
import { makeSigningPair } from '../src/labidp/idp.js';

const TARGET_US = 10;
const { values } = parseArgs({ options: { n: { type: 'string', default: '500000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-identify-'));
try {
  writeFileSync(join(dir, 'idp.pem'), makeSigningPair('Bench IdP').certPem);
  const config = validateConfig(
    {
      locations: [
        { name: 'open', ips: ['127.0.1.0/24'] },
        { name: 'enforced', ips: ['127.0.2.0/24'], enforceAuthentication: true },
        { name: 'surrogate', ips: ['127.0.3.0/24'], enforceAuthentication: true, surrogate: { enabled: true } },
      ],
      idps: [{ id: 'okta', name: 'Okta', ssoUrl: 'https://example.okta.test/sso', certificate: join(dir, 'idp.pem'), entityId: 'http://www.okta.com/x', default: true }],
      authentication: { exemptions: { hosts: ['*.okta.com', '*.oktacdn.com'] } },
    },
    'bench',
  );
  const store = new TieredStore(new EmbeddedStore({ path: join(dir, 'data') }));
  await store.start?.();
  const idps = await prepareIdps(config, { baseDir: dir, store, source: 'bench' });
  const rt = buildRuntime(config, 1, idps.byId);
  const sessions = new Sessions(store);
  const identifier = new Identifier(sessions);
  const host = 'www.example.com';
  const fields = { userId: 'u1', loginName: 'alice@example.com', displayName: 'Alice', department: 'Eng', groups: ['Eng'], idp: 'okta', authMethod: 'saml' as const };
  const s1 = await sessions.create({ ...fields, location: 'enforced', clientIp: '127.0.2.5' }, 3600_000);
  const { cookie } = (await sessions.plantCookie(s1.id, host, 3600_000))!;
  const s2 = await sessions.create({ ...fields, location: 'surrogate', clientIp: '127.0.3.5' }, 3600_000);
  await sessions.mapSurrogate('surrogate', '127.0.3.5', s2.id, { enabled: true, idleMs: 3600_000 });

  const browser: IncomingHttpHeaders = {
    host,
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
    accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'accept-language': 'en-US,en;q=0.9',
    'accept-encoding': 'gzip, deflate',
    cookie: `_ga=GA1.2.3; session=abc123; ${COOKIE_NAME}=${cookie}; theme=dark`,
    'sec-fetch-mode': 'navigate',
    'sec-fetch-dest': 'document',
  };
  const curl: IncomingHttpHeaders = { host, 'user-agent': 'curl/8.5.0', accept: '*/*' };
  const scenarios: { name: string; clientIp: string; headers: IncomingHttpHeaders; login: string }[] = [
    { name: 'open', clientIp: '127.0.1.5', headers: browser, login: '' },
    { name: 'cookie', clientIp: '127.0.2.5', headers: browser, login: 'alice@example.com' },
    { name: 'surrogate', clientIp: '127.0.3.5', headers: curl, login: 'alice@example.com' },
  ];

  const txFor = (r: Runtime, clientIp: string): Transaction => ({
    rt: r,
    startMs: 0,
    protocol: 'HTTP',
    peerIp: clientIp,
    clientIp,
    match: r.locator.lookup(clientIp),
    method: 'GET',
    url: `http://${host}/index.html?q=1`,
    host,
    port: 80,
    login: '',
    department: '',
    action: 'allowed',
    reason: '',
    identity: null,
  });
  const once = (sc: (typeof scenarios)[number]): string => {
    const tx = txFor(rt, sc.clientIp);
    const headers = { ...sc.headers };
    const d = decide(tx, headers, identifier);
    if (d.kind === 'forward') stripOwnCookie(headers);
    return d.kind === 'forward' ? tx.login : `(${d.kind})`;
  };

  // Warm memory through the async path once, then check every scenario ends as it should.
  for (const sc of scenarios) {
    const tx = txFor(rt, sc.clientIp);
    await identifier.resolve(tx, sc.headers.cookie?.includes(COOKIE_NAME) ? [cookie] : [], sc.headers['user-agent']!.startsWith('Mozilla/'), true);
    const got = once(sc);
    if (got !== sc.login) throw new Error(`${sc.name}: expected forward as "${sc.login}", got ${got}`);
  }

  const results = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const sc of r % 2 === 0 ? scenarios : [...scenarios].reverse()) {
      for (let i = 0; i < 20_000; i++) once(sc); // warm the JIT for this shape
      const c0 = process.cpuUsage();
      let sink = 0;
      for (let i = 0; i < N; i++) sink += once(sc).length;
      const c = process.cpuUsage(c0);
      if (sink !== N * sc.login.length) throw new Error(`${sc.name}: a request was not identified during the run`);
      const perReqUs = (c.user + c.system) / N;
      results.set(sc.name, [...(results.get(sc.name) ?? []), perReqUs]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(results.get('open')!);
  console.log(`identify: ${N} requests x ${ROUNDS} rounds per scenario, CPU per request (median [min-max]) of transaction + decide + cookie strip`);
  for (const sc of scenarios) {
    const xs = results.get(sc.name)!;
    const m = median(xs);
    const extra = sc.name === 'open' ? '' : `  extra over open: ${(m - base).toFixed(3)} µs`;
    console.log(`  ${sc.name.padEnd(10)} ${m.toFixed(3)} µs [${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)}]${extra}`);
  }
  const worst = Math.max(median(results.get('cookie')!), median(results.get('surrogate')!)) - base;
  console.log(`target: extra ≤ ${TARGET_US} µs per identified request on an LRU hit: ${worst <= TARGET_US ? 'MET' : 'NOT MET'} (worst ${worst.toFixed(3)} µs)`);
  const stats = store.stats();
  console.log(`LRU: ${stats.hits} hits, ${stats.misses} misses during the run`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
