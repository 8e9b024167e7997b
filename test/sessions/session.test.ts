import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { RedisStore } from '../../src/sessions/redis.js';
import { TieredStore } from '../../src/sessions/tiered.js';
import { Sessions } from '../../src/sessions/session.js';
import { startRedis, until } from '../helpers/redis.js';

const alice = { userId: 'u-alice', loginName: 'alice@example.test', displayName: 'Alice', department: 'Eng', groups: ['eng', 'all'], idp: 'okta', location: 'HQ', clientIp: '10.0.0.2', authMethod: 'saml' as const };
const bob = { ...alice, userId: 'u-bob', loginName: 'bob@example.test', displayName: 'Bob' };
const policy = { enabled: true, idleMs: 60_000 };

async function embedded(t: { teardown(fn: () => unknown): void }): Promise<TieredStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-sess-'));
  const s = new TieredStore(new EmbeddedStore({ path: dir }));
  await s.start();
  t.teardown(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

t.test('create, read from memory, expire', async (t) => {
  let now = 1_000_000;
  const store = await embedded(t);
  const sessions = new Sessions(store, () => now);
  const rec = await sessions.create(alice, 10_000);
  t.match(rec.id, /^[A-Za-z0-9_-]{43}$/);
  t.same((await sessions.get(rec.id))?.groups, ['eng', 'all']);
  t.equal(sessions.peek(rec.id)?.loginName, 'alice@example.test', 'after one read, memory answers');
  t.same(await sessions.sessionsOf('u-alice'), [rec.id]);
  now += 10_001;
  t.equal(sessions.peek(rec.id), null, 'an expired record reads as absent even from memory');
  t.equal(await sessions.get(rec.id), null);
});

t.test('one-time tokens: single use, bound to the client IP', async (t) => {
  const sessions = new Sessions(await embedded(t));
  const rec = await sessions.create(alice, 60_000);
  const tok = await sessions.mintToken(rec.id, '10.0.0.2', 'http://site.test/a', 'site');
  t.equal(await sessions.redeemToken(tok, '10.0.0.3', 'site'), null, 'another IP cannot use it');
  t.equal(await sessions.redeemToken(tok, '10.0.0.2', 'gateway'), null, 'nor can it serve another purpose');
  t.ok(await sessions.redeemToken(tok, '10.0.0.2', 'site'), 'and those attempts did not burn it for its owner');
  const tok2 = await sessions.mintToken(rec.id, '10.0.0.2', 'http://site.test/a', 'site');
  t.same(await sessions.redeemToken(tok2, '10.0.0.2', 'site'), { sessionId: rec.id, clientIp: '10.0.0.2', url: 'http://site.test/a', purpose: 'site' });
  t.equal(await sessions.redeemToken(tok2, '10.0.0.2', 'site'), null, 'second use fails');
  t.equal(await sessions.redeemToken('short', '10.0.0.2', 'site'), null);
  const tok3 = await sessions.mintToken(rec.id, '10.0.0.2', 'u', 'site');
  const results = await Promise.all(Array.from({ length: 20 }, () => sessions.redeemToken(tok3, '10.0.0.2', 'site')));
  t.equal(results.filter((r) => r !== null).length, 1, '20 concurrent redemptions: exactly one wins');
});

t.test('domain cookies and surrogates resolve, and revocation reaches all of them', async (t) => {
  const sessions = new Sessions(await embedded(t));
  const rec = await sessions.create(alice, 60_000);
  const { cookie: c1, ttlMs } = (await sessions.plantCookie(rec.id, 'a.test', 12 * 3600_000))!;
  t.ok(ttlMs <= 60_000, 'a cookie never outlives its session');
  const { cookie: c2 } = (await sessions.plantCookie(rec.id, 'b.test', 12 * 3600_000))!;
  t.equal(await sessions.cookieSession(c1, 'a.test'), rec.id);
  t.equal(await sessions.cookieSession(c1, 'b.test'), null, 'a cookie is valid only on the host it was planted for');
  t.equal(await sessions.cookieSession(c1, 'xa.test'), null);
  t.equal(sessions.peekCookie(c1, 'a.test'), rec.id);
  t.ok(await sessions.mapSurrogate('HQ', '10.0.0.2', rec.id, policy));
  t.equal((await sessions.surrogate('HQ', '10.0.0.2', policy))?.sessionId, rec.id);
  t.equal(sessions.peekSurrogate('HQ', '10.0.0.2')?.sessionId, rec.id);
  t.equal(await sessions.surrogate('HQ', '10.0.0.3', policy), null);
  t.equal(await sessions.surrogate('HQ', '10.0.0.2', { enabled: false, idleMs: 1 }), null, 'off means off');
  t.equal(await sessions.revokeUser('u-alice'), 1);
  t.equal(await sessions.get(rec.id), null);
  t.equal(await sessions.cookieSession(c1, 'a.test'), null);
  t.equal(await sessions.cookieSession(c2, 'b.test'), null);
  t.equal(await sessions.surrogate('HQ', '10.0.0.2', policy), null);
  t.same(await sessions.sessionsOf('u-alice'), []);
});

t.test('revokeAll ends every session; update rewrites user fields', async (t) => {
  const sessions = new Sessions(await embedded(t));
  const a = await sessions.create(alice, 60_000);
  const b = await sessions.create(bob, 60_000);
  t.ok(await sessions.update(a.id, { groups: ['New'] }));
  t.same((await sessions.get(a.id))?.groups, ['New']);
  t.equal(await sessions.revokeAll(), 2);
  t.equal(await sessions.get(a.id), null);
  t.equal(await sessions.get(b.id), null);
  t.equal(await sessions.revokeAll(), 0);
  t.notOk(await sessions.update(a.id, { groups: [] }), 'a revoked session is not resurrected');
});

t.test('surrogate re-mapped between users more than 3 times a minute is suspended', async (t) => {
  const sessions = new Sessions(await embedded(t));
  const a = await sessions.create(alice, 60_000);
  const b = await sessions.create(bob, 60_000);
  t.ok(await sessions.mapSurrogate('HQ', '10.0.0.9', a.id, policy));
  const results: boolean[] = [];
  for (let i = 0; i < 4; i++) results.push(await sessions.mapSurrogate('HQ', '10.0.0.9', i % 2 === 0 ? b.id : a.id, policy));
  t.same(results, [true, true, true, false], 'the fourth re-map within a minute suspends');
  t.equal(await sessions.surrogate('HQ', '10.0.0.9', policy), null, 'mapping dropped');
  t.notOk(await sessions.mapSurrogate('HQ', '10.0.0.9', a.id, policy), 'still suspended');
  t.ok(await sessions.mapSurrogate('HQ', '10.0.0.10', a.id, policy), 'other IPs unaffected');
});

t.test('two nodes on one Redis: a revoke on A is gone from B\'s memory within a second', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cfg = { type: 'redis' as const, url: redis.url, keyPrefix: 'tg-sess:', commandTimeoutMs: 1000 };
  const ra = new RedisStore(cfg);
  const rb = new RedisStore(cfg);
  await ra.ready(5000);
  await rb.ready(5000);
  const a = new TieredStore(ra);
  const b = new TieredStore(rb);
  await a.start();
  await b.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const sa = new Sessions(a);
  const sb = new Sessions(b);
  const rec = await sa.create(alice, 60_000);
  const { cookie } = (await sa.plantCookie(rec.id, 'a.test', 3600_000))!;
  t.equal((await sb.get(rec.id))?.loginName, 'alice@example.test', 'B sees a session made on A');
  t.equal(await sb.cookieSession(cookie, 'a.test'), rec.id);
  t.equal(sb.peek(rec.id)?.id, rec.id, 'B now answers from memory');
  await sa.revoke(rec.id);
  await until(() => sb.peek(rec.id) === undefined || sb.peek(rec.id) === null, 1000, 'B drops the session');
  await until(() => sb.peekCookie(cookie, 'a.test') === undefined || sb.peekCookie(cookie, 'a.test') === null, 1000, 'B drops the cookie');
  t.equal(await sb.get(rec.id), null);
  t.equal(await sb.cookieSession(cookie, 'a.test'), null);
});
