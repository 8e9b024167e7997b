import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COOKIE_NAME, Identifier, isFrameLoad, isNavigation, OncePer, readOwnCookies, splitToken, stripOwnCookie, TOKEN_PARAM, withToken, type Subject } from '../../src/auth/identify.js';
import { HostMatcher, UrlMatcher } from '../../src/auth/exempt.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { TieredStore } from '../../src/sessions/tiered.js';
import { Sessions } from '../../src/sessions/session.js';
import type { LocationMatch } from '../../src/proxy/locate.js';
import { Rng } from '../helpers/rng.js';

t.test('our cookie is found and stripped, whatever its neighbours', async (t) => {
  const cases: [string | undefined, string[], string | undefined][] = [
    [undefined, [], undefined],
    [`${COOKIE_NAME}=abc`, ['abc'], undefined],
    [`a=1; ${COOKIE_NAME}=abc; b=2`, ['abc'], 'a=1; b=2'],
    [`x${COOKIE_NAME}=nope; ${COOKIE_NAME}=yes`, ['yes'], `x${COOKIE_NAME}=nope`],
    [`x${COOKIE_NAME}=nope`, [], `x${COOKIE_NAME}=nope`],
    [`a=1;${COOKIE_NAME}=tight`, ['tight'], 'a=1'],
    [`${COOKIE_NAME}=`, [], undefined],
    [`${COOKIE_NAME}=planted; ${COOKIE_NAME}=mine`, ['planted', 'mine'], undefined],
  ];
  for (const [header, values, kept] of cases) {
    t.same(readOwnCookies(header), values, `read ${header}`);
    const h: Record<string, string | undefined> = header === undefined ? {} : { cookie: header };
    stripOwnCookie(h);
    t.equal(h.cookie, kept, `strip ${header}`);
  }
});

t.test('the one-time token comes off the URL, other parameters keep their order', async (t) => {
  t.same(splitToken(`/a?${TOKEN_PARAM}=T1`), { token: 'T1', clean: '/a' });
  t.same(splitToken(`/a?x=1&${TOKEN_PARAM}=T1&y=2`), { token: 'T1', clean: '/a?x=1&y=2' });
  t.equal(splitToken('/a?x=1'), null);
  t.equal(splitToken(`/a#${TOKEN_PARAM}=T`), null);
  t.equal(withToken('http://h/p', 'T'), `http://h/p?${TOKEN_PARAM}=T`);
  t.equal(withToken('http://h/p?q=1#frag', 'T'), `http://h/p?q=1&${TOKEN_PARAM}=T`);
});

t.test('only browser page loads count as navigations', async (t) => {
  const ua = { 'user-agent': 'Mozilla/5.0 (X11)' };
  t.ok(isNavigation('GET', ua));
  t.ok(isNavigation('HEAD', { ...ua, 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }));
  t.notOk(isNavigation('POST', ua), 'POST');
  t.notOk(isNavigation('GET', { 'user-agent': 'curl/8' }), 'curl');
  t.notOk(isNavigation('GET', {}), 'no user agent');
  t.notOk(isNavigation('GET', { ...ua, 'sec-fetch-mode': 'cors' }), 'fetch/XHR');
  t.notOk(isNavigation('GET', { ...ua, 'x-requested-with': 'XMLHttpRequest' }), 'jQuery XHR');
  t.notOk(isNavigation('GET', { ...ua, 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }), 'image');
  t.notOk(isNavigation('GET', { ...ua, 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }), 'a frame cannot take a sign-in round trip');
  t.ok(isFrameLoad('GET', { ...ua, 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }));
});

t.test('host and URL patterns', async (t) => {
  const h = new HostMatcher(['*.okta.com', '.oktacdn.com', 'exact.test']);
  t.ok(h.matches('acme.okta.com'));
  t.ok(h.matches('a.b.okta.com'));
  t.notOk(h.matches('okta.com'), '*. is subdomains only');
  t.notOk(h.matches('evilokta.com'));
  t.ok(h.matches('oktacdn.com'), '. includes the domain');
  t.ok(h.matches('x.oktacdn.com'));
  t.ok(h.matches('exact.test'));
  t.notOk(h.matches('sub.exact.test'));
  const u = new UrlMatcher(['http://a.test/exact', 'http://a.test/dir/*']);
  t.ok(u.matches('a.test', 'http://a.test/exact?q=1'), 'query ignored');
  t.notOk(u.matches('a.test', 'http://a.test/exact/more'));
  t.ok(u.matches('a.test', 'http://a.test/dir/x/y'));
  t.notOk(u.matches('b.test', 'http://b.test/dir/x'));
  t.notOk(u.matches('a.test', 'http://a.test/dir/..;/private'), 'path-parameter tricks are not exempt by prefix');
  t.notOk(u.matches('a.test', 'http://a.test/dir/%2e%2e/private'));
  t.notOk(u.matches('a.test', 'http://a.test/dir/x%2fy'));
  t.ok(u.matches('a.test', 'http://A.TEST:80/dir/z'), 'case and default port normalised');
});

t.test('Identifier: memory first, the surrogate only where the policy allows, re-validation after refresh', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-identify-'));
  const store = new TieredStore(new EmbeddedStore({ path: dir }));
  await store.start?.();
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let now = Date.now();
  const sessions = new Sessions(store, () => now);
  const id = new Identifier(sessions, undefined, () => now);
  const surrogate = { enabled: true, idleMs: 3600_000, enforceForKnownBrowsers: false, refreshMs: 600_000 };
  const match = (s: typeof surrogate) => ({ location: { name: 'HQ', surrogate: s }, sublocation: null, enforceAuthentication: true }) as unknown as LocationMatch;
  const subj = (protocol: Subject['protocol'], s = surrogate): Subject => ({ host: 'a.test', clientIp: '10.0.0.5', match: match(s), protocol });
  const rec = await sessions.create({ userId: 'u', loginName: 'alice', displayName: '', department: '', groups: [], idp: 'x', location: 'HQ', clientIp: '10.0.0.5', authMethod: 'saml' }, 3600_000);
  const { cookie } = (await sessions.plantCookie(rec.id, 'a.test', 3600_000))!;
  await sessions.mapSurrogate('HQ', '10.0.0.5', rec.id, surrogate);

  t.equal((await id.resolve(subj('HTTP'), [cookie], true, true))?.by, 'cookie');
  t.equal((await id.resolve(subj('HTTP'), ['planted-by-a-sibling', cookie], true, true))?.by, 'cookie', 'a second, valid cookie still identifies');
  t.equal(id.peek(subj('HTTP'), [cookie], true, true)?.by, 'cookie', 'now answered from memory');
  t.equal(await id.resolve(subj('HTTP'), [], true, true), null, 'a browser without cookie is not identified by the surrogate by default');
  t.equal((await id.resolve(subj('TUNNEL'), [], true, false))?.by, 'surrogate', 'a tunnel is');
  t.equal((await id.resolve(subj('HTTP'), [], false, false))?.by, 'surrogate', 'and so is a non-browser');
  const enforce = { ...surrogate, enforceForKnownBrowsers: true };
  t.equal((await id.resolve(subj('HTTP', enforce), [], true, true))?.by, 'surrogate', 'with "enforce for known browsers", browsers too');
  now += 700_000;
  t.equal(await id.resolve(subj('HTTP', enforce), [], true, true), null, 'past the refresh time a page load goes back to prove its cookie');
  t.equal((await id.resolve(subj('HTTP', enforce), [], true, false))?.by, 'surrogate', 'other requests keep using the surrogate');
  t.equal(id.peek(subj('HTTP'), [cookie + 'x'], true, true), undefined, 'an unknown cookie: memory cannot say, ask the store');
  t.equal(await id.resolve({ ...subj('HTTP'), host: 'b.test' }, [cookie], true, true), null, "another host's cookie identifies no one");
});

t.test('OncePer: a key is due at most once per period', async (t) => {
  const o = new OncePer(60_000, 100);
  t.equal(o.due('a', 1_000), true, 'first time');
  t.equal(o.due('a', 1_001), false);
  t.equal(o.due('a', 60_999), false, 'just inside the period');
  t.equal(o.due('a', 61_000), true, 'a period later');
  t.equal(o.due('b', 61_000), true, 'keys are apart');
  t.equal(o.due('a', 61_001), false);
});

t.test('OncePer at its cap forgets only keys that are due anyway, and answers as an unbounded record would', async (t) => {
  // At most about 21 keys are set within any period here, under a cap of 40: pruning always frees
  // more than a quarter of it, so every answer must equal that of a record that never forgets.
  const period = 1_000;
  const o = new OncePer(period, 40);
  const exact = new Map<string, number>();
  const r = new Rng(14);
  let mismatches = 0;
  for (let step = 0, t0 = 0; step < 50_000; step++) {
    if (step % 2 === 0) t0 += 100; // two requests every 100 ms: at most about 21 keys set within a period
    const key = `k${r.int(200)}`;
    const last = exact.get(key);
    const want = last === undefined || t0 - last >= period;
    if (want) exact.set(key, t0);
    if (o.due(key, t0) !== want) mismatches++;
    if (o.size > 40) t.fail(`step ${step}: ${o.size} keys kept, over the cap`);
  }
  t.equal(mismatches, 0);
});

t.test('OncePer with most keys fresh at its cap starts over, staying bounded and cheap', async (t) => {
  const o = new OncePer(60_000, 10);
  for (let i = 0; i < 10; i++) t.equal(o.due(`k${i}`, 5), true);
  t.equal(o.size, 10);
  t.equal(o.due('k10', 6), true, 'a new key still gets its answer');
  t.ok(o.size <= 10, `${o.size} keys kept`);
  t.equal(o.due('k10', 7), false, 'and is remembered');
});

t.test('OncePer walks its map rarely however the keys come', async (t) => {
  // Keys that turn stale one at a time as new ones come: pruning alone would free one key per walk.
  const cap = 1000;
  const o = new OncePer(1_000, cap);
  let walks = 0;
  for (let i = 0; i < 20_000; i++) {
    const before = o.size;
    o.due(`k${i}`, i);
    if (o.size <= before) walks++; // a walk (prune or clear) is the only way the size does not grow
  }
  t.ok(walks <= (20_000 / (cap / 4)) + 1, `${walks} walks for 20,000 new keys at a cap of ${cap}`);
  t.ok(o.size <= cap);
});
