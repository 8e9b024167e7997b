import t from 'tap';
import { join } from 'node:path';
import { LabUsersError, loadLabUsers, parseLabUsers } from '../../src/labidp/users.js';

t.test('a users document that cannot be used names the field at fault', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['empty file', null, /^u\.yaml: empty; expected a list of users or \{ users: \[\.\.\.\] \}$/],
    ['bad email in the users: form', { users: [{ loginName: 'x', password: 'p' }] }, /^u\.yaml: users\.0\.loginName: must be an email address$/],
    ['missing password in the list form', [{ loginName: 'a@x.example' }], /^u\.yaml: 0\.password: /],
    ['users not a list', { users: 'a' }, /^u\.yaml: users: .*expected array/],
    ['a misspelt key', [{ loginName: 'a@x.example', password: 'p', group: ['g'] }], /^u\.yaml: 0: Unrecognized key: "group"$/],
    ['a misspelt top level', { user: [] }, /^u\.yaml: .*"user"/],
  ];
  for (const [what, doc, want] of cases) {
    try {
      parseLabUsers(doc, 'u.yaml');
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.type(err, LabUsersError, what);
      t.equal((err as LabUsersError).code, 'LAB_USERS_INVALID', what);
      t.match((err as Error).message, want, what);
    }
  }
});

t.test('a users file that cannot be read or parsed says so in one line', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'users:\n  - loginName: [a@x.example\n', 'folder': {} });
  const cases: Array<[string, string, LabUsersError['code'], RegExp]> = [
    ['missing', join(dir, 'nope.yaml'), 'LAB_USERS_UNREADABLE', /^cannot read users file .*nope\.yaml: no such file$/],
    ['a folder', join(dir, 'folder'), 'LAB_USERS_UNREADABLE', /^cannot read users file .*folder: is a folder$/],
    ['not YAML', join(dir, 'bad.yaml'), 'LAB_USERS_NOT_YAML', /^.*bad\.yaml: not valid YAML: .* at line \d+, column \d+$/],
  ];
  for (const [what, path, code, want] of cases) {
    const err = await loadLabUsers(path).then(() => null, (e: unknown) => e);
    t.type(err, LabUsersError, what);
    t.equal((err as LabUsersError).code, code, what);
    t.match((err as Error).message, want, what);
  }
});

t.test('the example users file loads', async (t) => {
  const users = await loadLabUsers(join(import.meta.dirname, '../../examples/lab-users.yaml'));
  t.ok(users.length >= 3);
  const alice = users.find((u) => u.loginName === 'alice@example.com');
  t.same(alice?.groups, ['Engineering', 'VPN Users']);
  t.equal(alice?.department, 'Engineering');
  t.ok(users.some((u) => !u.loginName.endsWith('@example.com')), 'one user in another domain, for a second IdP');
});
