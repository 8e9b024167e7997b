import t from 'tap';
import { groupMatches, parseUserFilter, userMatches, type UserFilter } from '../../src/admin/users.js';
import { parseRevokeTarget, parseSessionFilter, sessionMatches } from '../../src/admin/sessions.js';
import type { GroupSummary, UserSummary } from '../../src/directory/directory.js';
import type { SessionRecord } from '../../src/sessions/session.js';
import { HttpError } from '../../src/http/errors.js';

const user = (over: Partial<UserSummary> = {}): UserSummary => ({
  id: 'u1',
  userName: 'Alice@Example.com',
  displayName: 'Alice Example',
  active: true,
  source: 'scim',
  department: 'Finance',
  groups: ['VPN Users', 'Finance Team'],
  externalId: undefined,
  created: '',
  lastModified: '',
  ...over,
});

t.test('parseUserFilter reads each filter, lower-cased, and names a bad one', async (t) => {
  const ok: [string, UserFilter][] = [
    ['', {}],
    ['name=ALI', { name: 'ali' }],
    ['group=VPN%20Users&department=finance', { group: 'vpn users', department: 'finance' }],
    ['source=jit&active=false', { source: 'jit', active: false }],
    ['active=true&name=', { active: true }],
  ];
  for (const [q, want] of ok) t.same(parseUserFilter(new URLSearchParams(q)), want, q);
  for (const q of ['source=ldap', 'active=yes', `name=${'x'.repeat(257)}`]) {
    t.throws(() => parseUserFilter(new URLSearchParams(q)), HttpError, q);
  }
});

t.test('userMatches applies every filter at once', async (t) => {
  const cases: [string, Partial<UserSummary>, boolean][] = [
    ['', {}, true],
    ['name=alice', {}, true],
    ['name=EXAMPLE.COM', {}, true],
    ['name=bob', {}, false],
    ['name=xample', { userName: 'a@b.test' }, true],
    ['group=vpn users', {}, true],
    ['group=vpn', {}, false],
    ['department=FINANCE', {}, true],
    ['department=legal', {}, false],
    ['department=legal', { department: undefined }, false],
    ['source=scim', {}, true],
    ['source=jit', {}, false],
    ['active=false', {}, false],
    ['active=false', { active: false }, true],
    ['name=alice&source=scim&active=true&group=finance team', {}, true],
    ['name=alice&source=jit', {}, false],
  ];
  for (const [q, over, want] of cases) t.equal(userMatches(user(over), parseUserFilter(new URLSearchParams(q))), want, `${q} ${JSON.stringify(over)}`);
});

t.test('groupMatches: name is a substring of the display name; source is exact', async (t) => {
  const g: GroupSummary = { id: 'g1', displayName: 'Finance Team', source: 'jit', members: 3, externalId: undefined, created: '', lastModified: '' };
  const cases: [string, boolean][] = [
    ['', true],
    ['name=team', true],
    ['name=sales', false],
    ['source=jit', true],
    ['source=scim', false],
  ];
  for (const [q, want] of cases) t.equal(groupMatches(g, parseUserFilter(new URLSearchParams(q))), want, q);
});

t.test('sessionMatches compares whole names, ignoring case', async (t) => {
  const s = { loginName: 'Alice@Example.com', location: 'HQ', idp: 'okta' } as SessionRecord;
  const cases: [string, boolean][] = [
    ['', true],
    ['user=alice@example.com', true],
    ['user=alice', false],
    ['location=hq', true],
    ['location=h', false],
    ['idp=OKTA&location=HQ', true],
    ['idp=entra', false],
  ];
  for (const [q, want] of cases) t.equal(sessionMatches(s, parseSessionFilter(new URLSearchParams(q))), want, q);
});

t.test('parseRevokeTarget wants exactly one of session, user, location', async (t) => {
  t.same(parseRevokeTarget({ session: 's1' }), { session: 's1' });
  t.same(parseRevokeTarget({ user: 'a@b' }), { user: 'a@b' });
  t.same(parseRevokeTarget({ location: 'HQ' }), { location: 'HQ' });
  for (const bad of [{}, { user: 'a', session: 'b' }, { user: '' }, { user: 1 }, { user: 'x'.repeat(257) }, { user: 'a', all: true }]) {
    t.throws(() => parseRevokeTarget(bad), new HttpError(400, 'bad_request', ''), JSON.stringify(bad).slice(0, 60));
  }
});
