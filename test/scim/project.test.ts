import t from 'tap';
import { GROUP_RESOURCE, USER_RESOURCE } from '../../src/scim/attributes.js';
import { project } from '../../src/scim/project.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const user = {
  schemas: [CORE, ENT],
  id: 'u1',
  externalId: 'e1',
  userName: 'bjensen',
  name: { givenName: 'Barbara', familyName: 'Jensen' },
  active: true,
  password: 'should-never-leave',
  emails: [
    { value: 'w@x', type: 'work', primary: true },
    { value: 'h@x', type: 'home' },
  ],
  meta: { resourceType: 'User', created: '2024-01-01T00:00:00Z' },
  [ENT]: { department: 'Sales', manager: { value: 'm1' } },
};

const group = {
  schemas: [GROUP],
  id: 'g1',
  displayName: 'Guides',
  members: [{ value: 'u1' }],
  meta: { resourceType: 'Group' },
};

const always = { schemas: [CORE, ENT], id: 'u1' };
const { password: _pw, ...visible } = user;

t.test('attributes returns only what is asked, plus id and schemas', async (t) => {
  const cases: [string | string[] | undefined, object][] = [
    [undefined, visible],
    ['', visible],
    ['userName', { ...always, userName: 'bjensen' }],
    ['USERNAME', { ...always, userName: 'bjensen' }],
    [`${CORE}:userName`, { ...always, userName: 'bjensen' }],
    ['userName,active', { ...always, userName: 'bjensen', active: true }],
    [['userName', 'active'], { ...always, userName: 'bjensen', active: true }],
    [' userName , active ', { ...always, userName: 'bjensen', active: true }],
    ['name.givenName', { ...always, name: { givenName: 'Barbara' } }],
    ['name.givenName,name.familyName', { ...always, name: { givenName: 'Barbara', familyName: 'Jensen' } }],
    ['name.givenName,name', { ...always, name: { givenName: 'Barbara', familyName: 'Jensen' } }],
    ['emails.value', { ...always, emails: [{ value: 'w@x' }, { value: 'h@x' }] }],
    ['emails.display', always],
    [`${ENT}:department`, { ...always, [ENT]: { department: 'Sales' } }],
    ['department', { ...always, [ENT]: { department: 'Sales' } }],
    [`${ENT}:manager.value`, { ...always, [ENT]: { manager: { value: 'm1' } } }],
    [ENT, { ...always, [ENT]: { department: 'Sales', manager: { value: 'm1' } } }],
    ['meta.created', { ...always, meta: { created: '2024-01-01T00:00:00Z' } }],
    ['password', always],
    ['id', always],
    ['nonsense,urn:example:x:y', always],
    ['nickName', always],
  ];
  for (const [attributes, want] of cases) {
    t.same(project(user, { resourceType: USER_RESOURCE, attributes }), want, JSON.stringify(attributes));
  }
});

t.test('excludedAttributes removes default attributes, never id or schemas', async (t) => {
  const cases: [string | string[], object][] = [
    ['emails', (({ emails: _e, ...r }) => r)(visible)],
    ['EMAILS,Name', (({ emails: _e, name: _n, ...r }) => r)(visible)],
    ['id,schemas', visible],
    ['name.givenName', { ...visible, name: { familyName: 'Jensen' } }],
    ['emails.type,emails.primary', { ...visible, emails: [{ value: 'w@x' }, { value: 'h@x' }] }],
    [`${ENT}:department`, { ...visible, [ENT]: { manager: { value: 'm1' } } }],
    [`${ENT}:department,${ENT}:manager`, (({ [ENT]: _x, ...r }) => r)(visible)],
    [ENT, (({ [ENT]: _x, ...r }) => r)(visible)],
    ['meta', (({ meta: _m, ...r }) => r)(visible)],
    ['nonsense', visible],
  ];
  for (const [excludedAttributes, want] of cases) {
    t.same(project(user, { resourceType: USER_RESOURCE, excludedAttributes }), want, JSON.stringify(excludedAttributes));
  }
});

t.test('groups: excludedAttributes=members for listings', async (t) => {
  t.same(project(group, { resourceType: GROUP_RESOURCE, excludedAttributes: 'members' }), {
    schemas: [GROUP],
    id: 'g1',
    displayName: 'Guides',
    meta: { resourceType: 'Group' },
  });
  t.same(project(group, { resourceType: GROUP_RESOURCE, attributes: 'displayName' }), { schemas: [GROUP], id: 'g1', displayName: 'Guides' });
  t.same(project(group, { resourceType: GROUP_RESOURCE, attributes: 'members.value' }), { schemas: [GROUP], id: 'g1', members: [{ value: 'u1' }] });
});

t.test('attributes wins over excludedAttributes; the input is never changed', async (t) => {
  const before = structuredClone(user);
  const out = project(user, { resourceType: USER_RESOURCE, attributes: 'emails', excludedAttributes: 'emails' });
  t.same(out, { ...always, emails: user.emails });
  (out['emails'] as { value: string }[])[0]!.value = 'changed';
  t.same(user, before, 'output shares nothing with the input');
});
