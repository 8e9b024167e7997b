import t from 'tap';
import { ReadOnlyStore } from '../../src/admin/explain.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';

t.test('the read-only view reads through and writes nothing, so explaining changes no state', async (t) => {
  const store = new EmbeddedStore({ path: t.testdir() });
  t.teardown(() => store.close());
  await store.set('k', 'v');
  await store.sadd('s', 'a');
  const ro = new ReadOnlyStore(store);
  await ro.set('k', 'changed');
  await ro.set('new', 'x');
  t.equal(await ro.consume('k'), 'v', 'consume reads');
  t.equal(await ro.del('k'), 0);
  await ro.sadd('s', 'b');
  await ro.srem('s', 'a');
  t.equal(await ro.createIfAbsent('other', 'x'), false);
  t.equal(await ro.atomic([{ op: 'set', key: 'k', value: 'y' }]), false);
  t.equal(await ro.incr('n'), 1);
  t.equal(await ro.incr('n'), 1, 'a counter does not move');
  t.equal(await store.get('k'), 'v', 'the value is untouched');
  t.equal(await store.get('new'), null);
  t.equal(await store.get('other'), null);
  t.same(await store.smembers('s'), ['a'], 'the set is untouched');
  t.same(await ro.readMany([{ op: 'get', key: 'k' }, { op: 'smembers', key: 's' }]), ['v', ['a']]);
});
