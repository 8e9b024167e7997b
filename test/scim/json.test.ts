import t from 'tap';
import { cloneJson } from '../../src/scim/json.js';

t.test('cloneJson copies JSON values deeply and shares nothing with the input', async (t) => {
  const cases: [string, unknown][] = [
    ['a string', 'x'],
    ['a number', 1.5],
    ['null', null],
    ['a boolean', false],
    ['an empty object', {}],
    ['an empty list', []],
    ['a user', { schemas: ['urn:x'], userName: 'a', name: { givenName: 'A' }, emails: [{ value: 'a@x', primary: true }], active: true }],
  ];
  for (const [name, v] of cases) t.same(cloneJson(v), v, name);
  const user = { name: { givenName: 'A' }, emails: [{ value: 'a@x' }] };
  const copy = cloneJson(user);
  copy.name.givenName = 'B';
  copy.emails[0]!.value = 'b@x';
  copy.emails.push({ value: 'c@x' });
  t.same(user, { name: { givenName: 'A' }, emails: [{ value: 'a@x' }] }, 'the input is unchanged');
});

t.test('cloneJson keeps a "__proto__" key as a plain key, as JSON.parse does', async (t) => {
  const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
  const copy = cloneJson(v);
  t.equal(Object.getPrototypeOf(copy), Object.prototype, 'the prototype is not replaced');
  t.ok(Object.hasOwn(copy, '__proto__'), 'the key is an own property');
  t.equal(JSON.stringify(copy), JSON.stringify(v), 'it serialises the same');
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'nothing leaks into Object.prototype');
});

t.test('cloneJson copies a value JSON cannot hold without aliasing it', async (t) => {
  const at = new Date(0);
  const copy = cloneJson({ at });
  t.not(copy.at, at, 'a new object');
  t.equal(copy.at.getTime(), 0, 'with the same value');
});
