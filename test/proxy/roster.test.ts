import t from 'tap';
import type { Test } from 'tap';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Roster, slot } from '../../src/proxy/roster.js';

const LINKS = slot('test');

/** model is what a Set would hold after the same operations, newest first as values() lists them. */
function check(t: Test, r: Roster<object>, model: object[], label: string): void {
  t.equal(r.size, model.length, `${label}: size`);
  t.same(r.values(), [...model].reverse(), `${label}: values, newest first`);
  for (const x of model) t.ok(r.has(x), `${label}: has each member`);
}

t.test('add and delete from the head, the middle and the tail', async (t) => {
  const r = new Roster<object>(LINKS);
  const [a, b, c, d] = [{ n: 'a' }, { n: 'b' }, { n: 'c' }, { n: 'd' }];
  check(t, r, [], 'empty');
  for (const x of [a, b, c, d]) r.add(x);
  check(t, r, [a, b, c, d], 'four added');
  t.equal(r.delete(c), true, 'a middle entry');
  check(t, r, [a, b, d], 'middle gone');
  t.equal(r.delete(d), true, 'the head (newest)');
  check(t, r, [a, b], 'head gone');
  t.equal(r.delete(a), true, 'the tail (oldest)');
  check(t, r, [b], 'tail gone');
  t.equal(r.delete(b), true, 'the last one');
  check(t, r, [], 'empty again');
  t.equal(r.has(a), false);
  r.add(a);
  check(t, r, [a], 'an entry taken off can be added again');
});

t.test('deleting what is not on it is false and changes nothing; adding twice throws', async (t) => {
  const r = new Roster<object>(LINKS);
  const a = {};
  const b = {};
  r.add(a);
  t.equal(r.delete(b), false, 'never added');
  t.equal(r.delete(a), true);
  t.equal(r.delete(a), false, 'already taken off');
  check(t, r, [], 'still empty');
  r.add(a);
  t.throws(() => r.add(a), /already on this roster/);
  check(t, r, [a], 'the failed add left it as it was');
});

t.test('one object on two rosters of different slots: each keeps its own links', async (t) => {
  const one = new Roster<object>(LINKS);
  const two = new Roster<object>(slot('other'));
  const [a, b, c] = [{}, {}, {}];
  one.add(a);
  one.add(b);
  two.add(b);
  two.add(c);
  one.delete(b);
  check(t, one, [a], 'one');
  check(t, two, [b, c], 'two is untouched by one');
  two.delete(c);
  check(t, two, [b], 'two');
  t.equal(one.has(b), false);
  t.equal(two.has(b), true);
});

t.test('values is a snapshot: the roster may change while it is walked', async (t) => {
  const r = new Roster<object>(LINKS);
  const xs = Array.from({ length: 10 }, (_, i) => ({ i }));
  for (const x of xs) r.add(x);
  const seen: object[] = [];
  for (const x of r.values()) {
    seen.push(x);
    r.delete(x);
    r.delete(xs[0]!);
  }
  t.equal(seen.length, 10, 'every entry walked although each walk step deleted');
  check(t, r, [], 'all gone');
});

t.test('against a Set over random operations', async (t) => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pool = Array.from({ length: 40 }, (_, i) => ({ i }));
  const r = new Roster<object>(LINKS);
  const model = new Set<object>();
  for (let step = 0; step < 20_000; step++) {
    const x = pool[rand(pool.length)]!;
    if (rand(2) === 0) {
      if (model.has(x)) continue;
      model.add(x);
      r.add(x);
    } else {
      t.equal(r.delete(x), model.delete(x), `step ${step}: delete agrees`);
    }
    if (r.size !== model.size) t.fail(`step ${step}: size ${r.size} vs ${model.size}`);
  }
  t.same(new Set(r.values()), model, 'the same members at the end');
  t.same(r.values(), [...model].reverse(), 'in the same order, newest first');
});

t.test('real sockets: on the roster while open, off it once closed', async (t) => {
  const roster = new Roster<net.Socket>(LINKS);
  const server = net.createServer((s) => {
    roster.add(s);
    s.once('close', () => roster.delete(s));
    s.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const clients = await Promise.all(
    Array.from({ length: 5 }, () => new Promise<void>((resolve, reject) => net.connect(port, '127.0.0.1').on('error', reject).on('close', () => resolve()).resume())),
  );
  t.equal(clients.length, 5);
  for (let i = 0; i < 50 && roster.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(roster.size, 0, 'every accepted socket left the roster when it closed');
  t.same(roster.values(), []);
});

t.test('rosters of one slot: each keeps to its own entries', async (t) => {
  const poolA = new Roster<object>(LINKS);
  const poolB = new Roster<object>(LINKS);
  const [a, b] = [{}, {}];
  poolA.add(a);
  poolB.add(b);
  t.equal(poolB.delete(a), false, "another roster's entry is not this one's to delete");
  t.equal(poolB.has(a), false);
  check(t, poolA, [a], 'A untouched');
  check(t, poolB, [b], 'B untouched');
  t.throws(() => poolB.add(a), /another roster of the same slot/);
  check(t, poolB, [b], 'the failed add left B as it was');
  poolA.delete(a);
  poolB.add(a);
  check(t, poolB, [b, a], 'taken off one, an entry can join the other');
  check(t, poolA, [], 'A empty');
});

t.test('entries of rosters of one slot share one hidden class; of different slots, they do not', async (t) => {
  // Asked of V8 itself, in a child with natives syntax: two pools made one after the other (as
  // upstream pools are made again after sitting idle) must give their connections the same shape.
  const script = `
    const { Roster, slot } = await import(${JSON.stringify(path.resolve('src/proxy/roster.ts'))});
    class Conn { constructor(n) { this.n = n; this.ex = null; } }
    const S = slot('pool');
    const a = new Conn(1), b = new Conn(2), c = new Conn(3);
    new Roster(S).add(a);
    new Roster(S).add(b);
    new Roster(slot('pool')).add(c);
    console.log(JSON.stringify({ same: %HaveSameMap(a, b), other: %HaveSameMap(a, c) }));
  `;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.same(JSON.parse(out.trim()), { same: true, other: false });
});
