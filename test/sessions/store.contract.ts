/**
 * The Store contract: every backend (embedded, Redis standalone, Redis Cluster, and TieredStore
 * over each) must pass exactly these cases. Each backend's test file calls storeContract with a
 * harness that opens instances sharing one backend and moves that backend's clock.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { readAll, readThrough, type Store } from '../../src/sessions/store.js';
import { until } from '../helpers/redis.js';

/** StoreHarness opens store instances that share one backend, like nodes sharing Redis. */
export interface StoreHarness {
  open(): Promise<Store>;
  /** advance moves the backend's clock: a fake clock jumps, a real backend sleeps. */
  advance(ms: number): Promise<void>;
}

/** TTL is the expiry used throughout; it only costs real time on backends without a fake clock. */
const TTL = 1_000;

/** byteOrder sorts the way Redis sorted sets and SQLite BINARY do: memcmp over UTF-8. */
function byteOrder(members: string[]): string[] {
  return [...members].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** storeContract registers the shared cases as a subtest named after the backend. */
export function storeContract(name: string, harness: StoreHarness): void {
  t.test(`${name}: Store contract`, async (t) => {
    /** pair opens two instances for one case and closes them when it ends. */
    const pair = async (): Promise<[Store, Store]> => {
      const a = await harness.open();
      const b = await harness.open();
      t.teardown(async () => {
        await a.close();
        await b.close();
      });
      return [a, b];
    };
    /** ns keeps each case's keys apart; the braces make them one Cluster hash tag. */
    const ns = (): string => `{${randomUUID().slice(0, 8)}}`;

    t.test('get is null for a missing key, then returns what set wrote, then the overwrite', async (t) => {
      const [s] = await pair();
      const k = `${ns()}kv`;
      t.equal(await s.get(k), null);
      await s.set(k, 'one');
      t.equal(await s.get(k), 'one');
      await s.set(k, 'two');
      t.equal(await s.get(k), 'two');
      await s.set(`${k}:empty`, '');
      t.equal(await s.get(`${k}:empty`), '', 'an empty string is a value, not absence');
    });

    t.test('a value with a TTL expires; one without stays; set without TTL clears an old TTL', async (t) => {
      const [s] = await pair();
      const p = ns();
      await s.set(`${p}a`, 'short', TTL);
      await s.set(`${p}b`, 'forever');
      await s.set(`${p}c`, 'short', TTL);
      await s.set(`${p}c`, 'now forever');
      t.equal(await s.get(`${p}a`), 'short');
      await harness.advance(TTL + 200);
      t.equal(await s.get(`${p}a`), null);
      t.equal(await s.get(`${p}b`), 'forever');
      t.equal(await s.get(`${p}c`), 'now forever');
    });

    t.test('createIfAbsent: of 50 concurrent callers on two instances exactly one wins', async (t) => {
      const [a, b] = await pair();
      const k = `${ns()}once`;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).createIfAbsent(k, `v${i}`, TTL * 10)),
      );
      const winners = results.flatMap((won, i) => (won ? [i] : []));
      t.equal(winners.length, 1);
      t.equal(await a.get(k), `v${winners[0]}`, 'the winner wrote the value');
      t.equal(await b.createIfAbsent(k, 'late'), false);
    });

    t.test('createIfAbsent writes again once the key has expired', async (t) => {
      const [s] = await pair();
      const k = `${ns()}expiring`;
      t.equal(await s.createIfAbsent(k, 'first', TTL), true);
      await harness.advance(TTL + 200);
      t.equal(await s.createIfAbsent(k, 'second'), true);
      t.equal(await s.get(k), 'second');
    });

    t.test('consume: of 50 concurrent callers on two instances exactly one gets the value', async (t) => {
      const [a, b] = await pair();
      const k = `${ns()}ticket`;
      await a.set(k, 'secret', TTL * 10);
      const got = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).consume(k)));
      t.same(got.filter((v) => v !== null), ['secret']);
      t.equal(await a.get(k), null);
      t.equal(await b.consume(k), null);
      t.equal(await b.consume(`${ns()}never`), null);
    });

    t.test('sets list members in byte order, page, count, test and remove them', async (t) => {
      const [s] = await pair();
      const k = `${ns()}set`;
      // 'ｚ' (U+FF5A) sorts before the emoji in UTF-8 bytes but after it in UTF-16 code units.
      const members = ['b', 'a', 'B', '10', '9', 'é', 'ｚ', '😀', 'a b', 'aa'];
      for (const m of members) await s.sadd(k, m);
      await s.sadd(k, 'a');
      const sorted = byteOrder(members);
      t.equal(await s.scard(k), members.length, 'adding a member twice keeps one');
      t.same(await s.smembers(k), sorted);
      const paged: string[] = [];
      for (let offset = 0; offset < members.length; offset += 3) {
        paged.push(...(await s.smembers(k, { offset, limit: 3 })));
      }
      t.same(paged, sorted, 'pages of 3 concatenate to the full list');
      t.same(await s.smembers(k, { offset: members.length, limit: 3 }), []);
      t.same(await s.smembers(k, { offset: 0, limit: 0 }), []);
      t.equal(await s.sismember(k, 'é'), true);
      t.equal(await s.sismember(k, 'e'), false);
      await s.srem(k, 'é');
      await s.srem(k, 'not there');
      t.equal(await s.sismember(k, 'é'), false);
      t.equal(await s.scard(k), members.length - 1);
      t.same(await s.smembers(`${ns()}none`), []);
      t.equal(await s.scard(`${ns()}none`), 0);
    });

    t.test('readAll answers gets and smembers in order, as the single calls do, seeing other instances and TTLs', async (t) => {
      const [a, b] = await pair();
      const p = ns();
      await a.set(`${p}v`, 'one');
      await a.set(`${p}short`, 'gone soon', TTL);
      for (const m of ['b', 'a', 'é', 'B']) await a.sadd(`${p}s`, m);
      await harness.advance(TTL + 200);
      const [v, missing, members, empty, short] = await readAll(b, [
        { op: 'get', key: `${p}v` },
        { op: 'get', key: `${p}missing` },
        { op: 'smembers', key: `${p}s` },
        { op: 'smembers', key: `${p}none` },
        { op: 'get', key: `${p}short` },
      ]);
      t.equal(v, 'one');
      t.equal(missing, null);
      t.same(members, byteOrder(['b', 'a', 'é', 'B']));
      t.same(empty, []);
      t.equal(short, null, 'an expired value is absent');
      t.same(await readAll(b, []), []);
      if (b.readMany !== undefined) t.same(await b.readMany([{ op: 'smembers', key: `${p}s` }]), [await b.smembers(`${p}s`)], 'readMany itself agrees');
    });

    t.test('readThrough reads an index entry and what it points to, seeing other instances and TTLs', async (t) => {
      const [a, b] = await pair();
      const p = ns();
      await a.set(`${p}idx:alice`, 'u1');
      await a.set(`${p}rec:u1`, '{"name":"alice"}');
      for (const m of ['g2', 'G1', 'é']) await a.sadd(`${p}groups:u1`, m);
      const reads = [
        { op: 'get', key: `${p}rec:` },
        { op: 'smembers', key: `${p}groups:` },
        { op: 'get', key: `${p}none:` },
        { op: 'smembers', key: `${p}empty:` },
      ] as const;
      t.same(await readThrough(b, `${p}idx:alice`, reads), { value: 'u1', results: ['{"name":"alice"}', byteOrder(['g2', 'G1', 'é']), null, []] });
      t.equal(await readThrough(b, `${p}idx:bob`, reads), null, 'no index entry: null');
      await a.set(`${p}idx:carol`, 'u3', TTL);
      await a.set(`${p}rec:u3`, 'carol');
      t.same(await readThrough(b, `${p}idx:carol`, reads), { value: 'u3', results: ['carol', [], null, []] });
      await harness.advance(TTL + 200);
      t.equal(await readThrough(b, `${p}idx:carol`, reads), null, 'an expired index entry is absent');
      await a.del(`${p}rec:u1`);
      t.same(await readThrough(b, `${p}idx:alice`, [{ op: 'get', key: `${p}rec:` }]), { value: 'u1', results: [null] }, 'a dangling entry still answers its value');
      if (b.readVia !== undefined) t.same(await b.readVia(`${p}idx:alice`, []), { value: 'u1', results: [] }, 'readVia itself agrees');
    });

    t.test('readThrough refuses prefixes without the index key\'s hash tag, on every backend', async (t) => {
      const [s] = await pair();
      const p = ns();
      await s.set(`${p}idx`, 'v');
      await t.rejects(readThrough(s, `${p}idx`, [{ op: 'get', key: 'rec:' }]), /hash tag/);
      await t.rejects(readThrough(s, `${p}idx`, [{ op: 'get', key: `${ns()}rec:` }]), /hash tag/);
      await t.rejects(readThrough(s, 'untagged', [{ op: 'get', key: 'rec:' }]), /hash tag/);
      // The tag must be closed inside the prefix, so the value appended cannot change the slot.
      await t.rejects(readThrough(s, `${p}idx`, [{ op: 'get', key: `${p.slice(0, -1)}` }]), /hash tag/);
    });

    t.test('incr counts in a fixed window that the first increment starts', async (t) => {
      const [a, b] = await pair();
      const k = `${ns()}rate`;
      t.equal(await a.incr(k, TTL), 1);
      t.equal(await b.incr(k, TTL), 2);
      await harness.advance(TTL * 0.6);
      t.equal(await a.incr(k, TTL), 3, 'still inside the window');
      await harness.advance(TTL * 0.6);
      t.equal(await a.incr(k, TTL), 1, 'later increments did not extend the window');
      const hits = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).incr(`${k}:n`, TTL * 10)));
      t.same([...hits].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1), 'no lost increments');
    });

    t.test('atomic applies every op together', async (t) => {
      const [s] = await pair();
      const p = ns();
      await s.set(`${p}old`, 'x');
      await s.sadd(`${p}set`, 'gone');
      const ok = await s.atomic([
        { op: 'set', key: `${p}new`, value: 'v', ttlMs: TTL },
        { op: 'set', key: `${p}forever`, value: 'f' },
        { op: 'del', key: `${p}old` },
        { op: 'sadd', key: `${p}set`, member: 'kept' },
        { op: 'srem', key: `${p}set`, member: 'gone' },
      ]);
      t.equal(ok, true);
      t.equal(await s.get(`${p}new`), 'v');
      t.equal(await s.get(`${p}old`), null);
      t.same(await s.smembers(`${p}set`), ['kept']);
      await harness.advance(TTL + 200);
      t.equal(await s.get(`${p}new`), null, 'the ttl of a set op applies');
      t.equal(await s.get(`${p}forever`), 'f');
    });

    t.test('atomic writes nothing when an ifAbsent key exists', async (t) => {
      const [s] = await pair();
      const p = ns();
      const ops = [
        { op: 'set', key: `${p}a`, value: 'v' },
        { op: 'sadd', key: `${p}s`, member: 'm' },
      ] as const;
      await s.set(`${p}guard`, 'held');
      t.equal(await s.atomic([...ops], [`${p}free`, `${p}guard`]), false);
      t.equal(await s.get(`${p}a`), null);
      t.equal(await s.scard(`${p}s`), 0);
      await s.sadd(`${p}setguard`, 'x');
      t.equal(await s.atomic([...ops], [`${p}setguard`]), false, 'a set counts as existing');
      t.equal(await s.get(`${p}a`), null);
      t.equal(await s.atomic([...ops], [`${p}free`]), true);
      t.equal(await s.get(`${p}a`), 'v');
      t.equal(await s.scard(`${p}s`), 1);
    });

    t.test('atomic treats an expired ifAbsent key as absent', async (t) => {
      const [s] = await pair();
      const p = ns();
      await s.set(`${p}guard`, 'held', TTL);
      await harness.advance(TTL + 200);
      t.equal(await s.atomic([{ op: 'set', key: `${p}a`, value: 'v' }], [`${p}guard`]), true);
      t.equal(await s.get(`${p}a`), 'v');
    });

    t.test('atomic with ifAbsent on its own key: of 50 concurrent replays exactly one lands', async (t) => {
      const [a, b] = await pair();
      const p = ns();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 ? a : b).atomic(
            [
              { op: 'set', key: `${p}assertion`, value: `r${i}`, ttlMs: TTL * 10 },
              { op: 'sadd', key: `${p}log`, member: `r${i}` },
            ],
            [`${p}assertion`],
          ),
        ),
      );
      t.equal(results.filter(Boolean).length, 1);
      t.equal(await a.scard(`${p}log`), 1);
    });

    t.test('publish reaches subscribers on every instance, the publisher included', async (t) => {
      const [a, b] = await pair();
      const ch = `${ns()}events`;
      const gotA: string[] = [];
      const gotB: string[] = [];
      await a.subscribe(ch, (m) => gotA.push(m));
      const offB = await b.subscribe(ch, (m) => gotB.push(m));
      await a.publish(ch, 'hello');
      await until(() => gotA.includes('hello') && gotB.includes('hello'), 2_000, 'hello on both instances');
      await offB();
      await a.publish(ch, 'after');
      await until(() => gotA.includes('after'), 2_000, 'after on the publisher');
      t.same(gotA, ['hello', 'after']);
      t.same(gotB, ['hello'], 'an unsubscribed handler hears nothing more');
      const other: string[] = [];
      await b.subscribe(`${ch}:other`, (m) => other.push(m));
      await a.publish(ch, 'not for other');
      await a.publish(`${ch}:other`, 'for other');
      await until(() => other.length > 0, 2_000, 'message on the other channel');
      t.same(other, ['for other'], 'channels are kept apart');
    });

    t.test('del removes values, sets and counters and counts the keys that existed', async (t) => {
      const [a, b] = await pair();
      const p = ns();
      await a.set(`${p}v`, 'x');
      await a.sadd(`${p}s`, 'm');
      await a.incr(`${p}c`, TTL * 10);
      await a.set(`${p}expired`, 'x', TTL);
      await harness.advance(TTL + 200);
      t.equal(await b.del(`${p}v`, `${p}s`, `${p}c`, `${p}missing`, `${p}expired`), 3);
      t.equal(await a.get(`${p}v`), null);
      t.equal(await a.scard(`${p}s`), 0);
      t.equal(await a.incr(`${p}c`, TTL), 1, 'the counter starts over');
      t.equal(await b.del(), 0);
    });

    t.test('ping answers and kind names the backend', async (t) => {
      const [s] = await pair();
      await s.ping();
      t.type(s.kind, 'string');
      t.ok(s.kind.length > 0);
    });
  });
}
