import t from 'tap';
import { GROUP_RESOURCE, USER_RESOURCE, type ResourceTypeDef } from '../../src/scim/attributes.js';
import {
  applyPatch,
  buildResource,
  MAX_PATCH_OPERATIONS,
  parsePatchRequest,
  PATCH_OP_SCHEMA,
  type ScimResource,
} from '../../src/scim/patch.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

function user(extra: ScimResource = {}): ScimResource {
  return {
    schemas: [CORE],
    id: 'u1',
    userName: 'bjensen@example.com',
    name: { givenName: 'Barbara', familyName: 'Jensen' },
    active: true,
    emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }],
    meta: { resourceType: 'User', created: '2024-01-01T00:00:00Z' },
    ...extra,
  };
}

function group(members: string[]): ScimResource {
  return { schemas: [GROUP], id: 'g1', displayName: 'Tour Guides', members: members.map((value) => ({ value })) };
}

const ids = (g: ScimResource) => (g['members'] as { value: string }[] | undefined)?.map((m) => m.value) ?? [];

function patch(r: ScimResource, ops: unknown[], rt: ResourceTypeDef = USER_RESOURCE): ScimResource {
  return applyPatch(r, ops, { resourceType: rt });
}

t.test("Okta's user shapes", async (t) => {
  const off = patch(user(), [{ op: 'replace', value: { active: false } }]);
  t.equal(off['active'], false, 'path-less replace deactivates');
  t.equal(patch(off, [{ op: 'replace', value: { active: true } }])['active'], true, 'and reactivates');

  const echoed = patch(user(), [
    { op: 'replace', value: { id: 'other', meta: { created: 'x' }, groups: [{ value: 'g' }], schemas: ['bogus'], active: false } },
  ]);
  t.equal(echoed['id'], 'u1', 'echoed id is ignored');
  t.same(echoed['meta'], user()['meta'], 'echoed meta is ignored');
  t.notOk('groups' in echoed, 'echoed groups are ignored');
  t.same(echoed['schemas'], [CORE], 'schemas are recomputed');

  const pw = patch(user(), [{ op: 'replace', value: { password: 'hunter2' } }, { op: 'replace', path: 'password', value: 'x' }]);
  t.notOk('password' in pw, 'password is accepted and never kept');
});

t.test("Okta's Group Push", async (t) => {
  let g = buildResource(GROUP_RESOURCE, { schemas: [GROUP], displayName: 'Tour Guides', members: [] });
  t.same(g, { schemas: [GROUP], displayName: 'Tour Guides' }, 'created with empty members');
  g = { ...g, id: 'g1' };
  g = patch(g, [{ op: 'add', path: 'members', value: [{ value: 'u1', display: 'a' }, { value: 'u2' }] }], GROUP_RESOURCE);
  t.same(ids(g), ['u1', 'u2']);
  g = patch(
    g,
    [
      { op: 'remove', path: 'members[value eq "u1"]' },
      { op: 'add', path: 'members', value: [{ value: 'u3' }, { value: 'u2' }] },
    ],
    GROUP_RESOURCE,
  );
  t.same(ids(g), ['u2', 'u3'], 'one PATCH removes by filter and adds a list, without duplicates');
  g = patch(g, [{ op: 'replace', value: { id: 'g1', displayName: 'Guides' } }], GROUP_RESOURCE);
  t.equal(g['displayName'], 'Guides', 'rename echoes id and displayName');
  t.equal(g['id'], 'g1');
  t.same(ids(g), ['u2', 'u3']);
  const again = patch(g, [{ op: 'remove', path: 'members[value eq "u1"]' }], GROUP_RESOURCE);
  t.same(ids(again), ['u2', 'u3'], 'removing a member already gone is a no-op, so retries succeed');
});

t.test("Entra's user shapes", async (t) => {
  const cases: [string, unknown[], (r: ScimResource) => unknown, unknown][] = [
    ['capitalised Replace with "False"', [{ op: 'Replace', path: 'active', value: 'False' }], (r) => r['active'], false],
    ['"True" string', [{ op: 'Replace', path: 'active', value: 'True' }], (r) => r['active'], true],
    ['lower-case "false"', [{ op: 'replace', path: 'active', value: 'false' }], (r) => r['active'], false],
    ['REPLACE in capitals', [{ op: 'REPLACE', path: 'displayName', value: 'Babs' }], (r) => r['displayName'], 'Babs'],
    [
      'replace a matched work email',
      [{ op: 'Replace', path: 'emails[type eq "work"].value', value: 'new@example.com' }],
      (r) => r['emails'],
      [{ value: 'new@example.com', type: 'work', primary: true }],
    ],
    [
      'replace creates a missing element from the filter',
      [{ op: 'Replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555' }],
      (r) => r['phoneNumbers'],
      [{ type: 'mobile', value: '+1 555' }],
    ],
    [
      'add creates from a conjunction of eq tests',
      [{ op: 'Add', path: 'emails[type eq "home" and primary eq false].value', value: 'h@x.org' }],
      (r) => (r['emails'] as unknown[])[1],
      { type: 'home', primary: false, value: 'h@x.org' },
    ],
    [
      'address sub-attribute by filter',
      [{ op: 'Add', path: 'addresses[type eq "work"].streetAddress', value: '1 Main St' }],
      (r) => r['addresses'],
      [{ type: 'work', streetAddress: '1 Main St' }],
    ],
    ['name.givenName', [{ op: 'Replace', path: 'name.givenName', value: 'Babs' }], (r) => r['name'], { givenName: 'Babs', familyName: 'Jensen' }],
    ['any-case path, canonical output', [{ op: 'replace', path: 'NAME.FAMILYNAME', value: 'J' }], (r) => r['name'], { givenName: 'Barbara', familyName: 'J' }],
    ['enterprise department', [{ op: 'Add', path: `${ENT}:department`, value: 'Sales' }], (r) => r[ENT], { department: 'Sales' }],
    ['enterprise manager as a bare id', [{ op: 'Add', path: `${ENT}:manager`, value: 'm-1' }], (r) => r[ENT], { manager: { value: 'm-1' } }],
    ['enterprise manager.value', [{ op: 'Replace', path: `${ENT}:manager.value`, value: 'm-2' }], (r) => r[ENT], { manager: { value: 'm-2' } }],
    ['extension schemas listed', [{ op: 'Add', path: `${ENT}:department`, value: 'Sales' }], (r) => r['schemas'], [CORE, ENT]],
    [
      'path-less with dotted and URN keys',
      [{ op: 'Add', value: { 'name.givenName': 'B', [`${ENT}:employeeNumber`]: '7', 'emails[type eq "work"].value': 'w@x' } }],
      (r) => [(r['name'] as ScimResource)['givenName'], r[ENT], (r['emails'] as ScimResource[])[0]?.['value']],
      ['B', { employeeNumber: '7' }, 'w@x'],
    ],
    [
      'path-less with a URN-keyed extension object',
      [{ op: 'replace', value: { [ENT]: { department: 'Ops', manager: { value: 'm', displayName: 'ignored' } } } }],
      (r) => r[ENT],
      { department: 'Ops', manager: { value: 'm' } },
    ],
    ['whole extension by path', [{ op: 'add', path: ENT, value: { Division: 'EMEA' } }], (r) => r[ENT], { division: 'EMEA' }],
    ['externalId', [{ op: 'Add', path: 'externalId', value: 'e-1' }], (r) => r['externalId'], 'e-1'],
    [
      'Workflow Automation attributes in the core namespace',
      [{ op: 'add', value: { manager: 'Jane Roe', city: 'Oslo', streetAddress: '1 Main St', mobilePhones: '+47' } }],
      (r) => [r['manager'], r['city'], r['streetAddress'], r['mobilePhones']],
      ['Jane Roe', 'Oslo', '1 Main St', '+47'],
    ],
    [
      'roles with "False" primary',
      [{ op: 'Add', path: 'roles', value: [{ primary: 'False', type: 'WindowsAzureActiveDirectoryRole', value: 'r' }] }],
      (r) => r['roles'],
      [{ primary: false, type: 'WindowsAzureActiveDirectoryRole', value: 'r' }],
    ],
  ];
  for (const [name, ops, pick, want] of cases) t.same(pick(patch(user(), ops)), want, name);
});

t.test("Entra's member removal removes only the listed members", async (t) => {
  const g = group(['u1', 'u2', 'u3', 'u4']);
  const cases: [string, unknown[], string[]][] = [
    ['Remove with a value list', [{ op: 'Remove', path: 'members', value: [{ value: 'u2' }, { value: 'u4' }] }], ['u1', 'u3']],
    ['a single object value', [{ op: 'Remove', path: 'members', value: { value: 'u1' } }], ['u2', 'u3', 'u4']],
    ['a member not in the group', [{ op: 'Remove', path: 'members', value: [{ value: 'nobody' }] }], ['u1', 'u2', 'u3', 'u4']],
    ['an empty list removes nothing', [{ op: 'Remove', path: 'members', value: [] }], ['u1', 'u2', 'u3', 'u4']],
    ['member ids are caseExact', [{ op: 'Remove', path: 'members', value: [{ value: 'U1' }] }], ['u1', 'u2', 'u3', 'u4']],
    ['remove without a value empties', [{ op: 'remove', path: 'members' }], []],
    ['Add dedupes', [{ op: 'Add', path: 'members', value: [{ value: 'u1' }, { value: 'u5' }, { value: 'u5' }] }], ['u1', 'u2', 'u3', 'u4', 'u5']],
    ['replace sets the list', [{ op: 'replace', path: 'members', value: [{ value: 'u9' }] }], ['u9']],
    ['replace with an empty list empties', [{ op: 'replace', path: 'members', value: [] }], []],
    ['remove by filter', [{ op: 'remove', path: 'members[value eq "u3"]' }], ['u1', 'u2', 'u4']],
    ['remove by or-filter', [{ op: 'remove', path: 'members[value eq "u3" or value eq "u1"]' }], ['u2', 'u4']],
  ];
  for (const [name, ops, want] of cases) t.same(ids(patch(g, ops, GROUP_RESOURCE)), want, name);
  const big = group(Array.from({ length: 5000 }, (_, i) => `u${i}`));
  const out = patch(big, [{ op: 'Remove', path: 'members', value: [{ value: 'u10' }] }], GROUP_RESOURCE);
  t.equal(ids(out).length, 4999, 'large groups keep every other member');
});

t.test('RFC 7644 §3.5.2 semantics', async (t) => {
  const r = user({
    emails: [
      { value: 'w@x', type: 'work', primary: true },
      { value: 'h@x', type: 'home' },
    ],
    [ENT]: { department: 'Sales' },
    schemas: [CORE, ENT],
  });
  const cases: [string, unknown[], (r: ScimResource) => unknown, unknown][] = [
    ['replace of a complex attribute keeps other sub-attributes', [{ op: 'replace', path: 'name', value: { givenName: 'B' } }], (x) => x['name'], { givenName: 'B', familyName: 'Jensen' }],
    ['null unassigns a sub-attribute', [{ op: 'replace', path: 'name', value: { familyName: null } }], (x) => x['name'], { givenName: 'Barbara' }],
    ['null unassigns an attribute', [{ op: 'replace', path: 'displayName', value: null }, { op: 'replace', path: 'name', value: null }], (x) => ['displayName' in x, 'name' in x], [false, false]],
    ['remove of a sub-attribute', [{ op: 'remove', path: 'name.givenName' }], (x) => x['name'], { familyName: 'Jensen' }],
    ['removing the last sub-attribute unassigns the parent', [{ op: 'remove', path: 'name.givenName' }, { op: 'remove', path: 'name.familyName' }], (x) => 'name' in x, false],
    ['remove of an absent attribute is a no-op', [{ op: 'remove', path: 'nickName' }], (x) => 'nickName' in x, false],
    ['remove of the last extension attribute drops the extension', [{ op: 'remove', path: `${ENT}:department` }], (x) => [ENT in x, x['schemas']], [false, [CORE]]],
    ['remove of a whole extension', [{ op: 'remove', path: ENT }], (x) => [ENT in x, x['schemas']], [false, [CORE]]],
    ['remove by filter', [{ op: 'remove', path: 'emails[type eq "home"]' }], (x) => x['emails'], [{ value: 'w@x', type: 'work', primary: true }]],
    ['remove of value by filter drops the element', [{ op: 'remove', path: 'emails[type eq "home"].value' }], (x) => (x['emails'] as unknown[]).length, 1],
    ['remove of another sub-attribute by filter keeps the element', [{ op: 'remove', path: 'emails[type eq "work"].primary' }], (x) => (x['emails'] as unknown[])[0], { value: 'w@x', type: 'work' }],
    ['remove by filter with no match changes nothing', [{ op: 'remove', path: 'emails[type eq "other"]' }], (x) => (x['emails'] as unknown[]).length, 2],
    ['add to a multi-valued attribute appends', [{ op: 'add', path: 'emails', value: [{ value: 'o@x', type: 'other' }] }], (x) => (x['emails'] as unknown[]).length, 3],
    ['add of a single element wraps it', [{ op: 'add', path: 'emails', value: { value: 'o@x' } }], (x) => (x['emails'] as unknown[]).length, 3],
    ['add of an existing value (any case) updates it, not duplicates', [{ op: 'add', path: 'emails', value: [{ value: 'H@X', type: 'home2' }] }], (x) => x['emails'], [{ value: 'w@x', type: 'work', primary: true }, { value: 'H@X', type: 'home2' }]],
    ['replace of a multi-valued attribute replaces all', [{ op: 'replace', path: 'emails', value: [{ value: 'n@x' }] }], (x) => x['emails'], [{ value: 'n@x' }]],
    ['a new primary clears the old one', [{ op: 'add', path: 'emails', value: [{ value: 'n@x', primary: true }] }], (x) => (x['emails'] as ScimResource[]).map((e) => e['primary'] ?? null), [false, null, true]],
    ['primary via filter', [{ op: 'replace', path: 'emails[type eq "home"].primary', value: 'True' }], (x) => (x['emails'] as ScimResource[]).map((e) => e['primary']), [false, true]],
    ['replace by filter merges into the element', [{ op: 'replace', path: 'emails[type eq "work"]', value: { value: 'w2@x' } }], (x) => (x['emails'] as unknown[])[0], { value: 'w2@x', type: 'work', primary: true }],
    ['replace of an absent attribute adds it', [{ op: 'replace', path: 'nickName', value: 'Babs' }], (x) => x['nickName'], 'Babs'],
    ['operations apply in order', [{ op: 'add', path: 'title', value: 'A' }, { op: 'replace', path: 'title', value: 'B' }, { op: 'remove', path: 'title' }, { op: 'add', path: 'title', value: 'C' }], (x) => x['title'], 'C'],
    ['unknown sub-attributes in a value are dropped', [{ op: 'add', path: 'emails', value: [{ value: 'o@x', colour: 'red' }] }], (x) => (x['emails'] as unknown[])[2], { value: 'o@x' }],
    ['op and path keys in any case', [{ OP: 'replace', Path: 'title', Value: 'T' }], (x) => x['title'], 'T'],
    ['an empty Operations list changes nothing', [], (x) => x['userName'], 'bjensen@example.com'],
  ];
  for (const [name, ops, pick, want] of cases) t.same(pick(patch(r, ops)), want, name);
});

t.test('canonical names in the output', async (t) => {
  const stored = { schemas: [CORE], id: 'u1', USERNAME: 'x', Name: { GIVENNAME: 'a' } };
  const out = patch(stored, [{ op: 'replace', path: 'username', value: 'y' }, { op: 'replace', path: 'name.givenName', value: 'b' }]);
  t.same(out, { schemas: [CORE], id: 'u1', userName: 'y', name: { givenName: 'b' } });
  const fromValue = patch(user(), [{ op: 'add', value: { NICKNAME: 'n', Emails: [{ VALUE: 'v@x', TYPE: 'work', PRIMARY: 'true' }] } }]);
  t.equal(fromValue['nickName'], 'n');
  t.same((fromValue['emails'] as unknown[])[1], { value: 'v@x', type: 'work', primary: true });
});

t.test('bad operations are 400s with the RFC scimType', async (t) => {
  const tooLong = 'x'.repeat(33);
  const cases: [string, unknown, string, RegExp][] = [
    ['operation not an object', ['add'], 'invalidSyntax', /operation 1: is not a JSON object/],
    ['missing op', [{ path: 'title', value: 'x' }], 'invalidSyntax', /has no "op"/],
    ['op not a string', [{ op: 1, path: 'title', value: 'x' }], 'invalidSyntax', /has no "op"/],
    ['unknown op', [{ op: 'copy', path: 'title', value: 'x' }], 'invalidSyntax', /unknown op "copy"/],
    ['JSON Patch move', [{ op: 'move', from: 'a', path: 'title' }], 'invalidSyntax', /unknown op "move"/],
    ['add without value', [{ op: 'add', path: 'title' }], 'invalidValue', /"add" needs a "value"/],
    ['replace without value', [{ op: 'Replace', path: 'title' }], 'invalidValue', /"replace" needs a "value"/],
    ['remove without path', [{ op: 'remove' }], 'noTarget', /"remove" needs a "path"/],
    ['path-less add of a string', [{ op: 'add', value: 'x' }], 'invalidValue', /without a path needs an object/],
    ['path-less replace of a list', [{ op: 'replace', value: [{ active: false }] }], 'invalidValue', /needs an object/],
    ['path not a string', [{ op: 'add', path: 5, value: 'x' }], 'invalidPath', /"path" must be a string/],
    ['unknown attribute', [{ op: 'add', path: 'favouriteColour', value: 'x' }], 'invalidPath', /unknown attribute "favouriteColour"/],
    ['unknown attribute in a path-less value', [{ op: 'replace', value: { favouriteColour: 'x' } }], 'invalidPath', /unknown attribute "favouriteColour"/],
    ['unknown sub-attribute', [{ op: 'add', path: 'name.nick', value: 'x' }], 'invalidPath', /no sub-attribute "nick"/],
    ['unknown schema URN', [{ op: 'add', path: 'urn:example:custom:2.0:User:x', value: 'x' }], 'invalidPath', /unknown schema "urn:example:custom:2.0:User"/],
    ['unknown extension attribute', [{ op: 'add', path: `${ENT}:nope`, value: 'x' }], 'invalidPath', /unknown attribute "nope"/],
    ['malformed filter in path', [{ op: 'remove', path: 'emails[type eq ]' }], 'invalidPath', /expected a value/],
    ['sub-attribute of a multi-valued attribute without filter', [{ op: 'replace', path: 'emails.value', value: 'x' }], 'invalidPath', /needs a value filter/],
    ['replace by non-eq filter with no match', [{ op: 'replace', path: 'emails[value co "nomatch"].value', value: 'x' }], 'noTarget', /matches no value/],
    ['add by or-filter with no match', [{ op: 'add', path: 'emails[type eq "a" or type eq "b"].value', value: 'x' }], 'noTarget', /matches no value/],
    ['read-only id by path', [{ op: 'replace', path: 'id', value: 'x' }], 'mutability', /"id" is read-only/],
    ['read-only meta sub-attribute by path', [{ op: 'replace', path: 'meta.created', value: '2020-01-01T00:00:00Z' }], 'mutability', /"created" is read-only/],
    ['read-only groups by path', [{ op: 'add', path: 'groups', value: [{ value: 'g' }] }], 'mutability', /"groups" is read-only/],
    ['boolean from a non-boolean string', [{ op: 'replace', path: 'active', value: 'yes' }], 'invalidValue', /active must be true or false/],
    ['boolean from a number', [{ op: 'replace', value: { active: 0 } }], 'invalidValue', /active must be true or false/],
    ['string attribute given a number', [{ op: 'replace', path: 'title', value: 42 }], 'invalidValue', /title must be a string/],
    ['complex attribute given a number', [{ op: 'replace', path: 'name', value: 1 }], 'invalidValue', /name must be an object/],
    ['element without value', [{ op: 'add', path: 'emails', value: [{ type: 'work' }] }], 'invalidValue', /emails\[0\]\.value is required/],
    ['members element without value', [{ op: 'add', path: 'emails', value: [{ value: 'a@b' }, { display: 'x' }] }], 'invalidValue', /emails\[1\]\.value is required/],
    ['removing userName', [{ op: 'remove', path: 'userName' }], 'invalidValue', /userName is required/],
    ['userName set to empty', [{ op: 'replace', path: 'userName', value: '' }], 'invalidValue', /userName is required/],
    ['Workflow Automation attribute too long', [{ op: 'replace', path: 'city', value: tooLong }], 'invalidValue', /city must be 1 to 32/],
    ['manager too long', [{ op: 'replace', value: { manager: 'm'.repeat(129) } }], 'invalidValue', /manager must be 1 to 128/],
    ['streetAddress too long', [{ op: 'add', path: 'streetAddress', value: 's'.repeat(65) }], 'invalidValue', /streetAddress must be 1 to 64/],
    ['Workflow Automation attribute empty', [{ op: 'add', path: 'zipCode', value: '' }], 'invalidValue', /zipCode must be 1 to 32/],
    ['Operations not an array', 'nope', 'invalidSyntax', /must be an array/],
    [
      'too many operations',
      Array.from({ length: MAX_PATCH_OPERATIONS + 1 }, () => ({ op: 'replace', path: 'title', value: 't' })),
      'invalidValue',
      /at most 1000 operations/,
    ],
  ];
  for (const [name, ops, scimType, detail] of cases) {
    t.throws(() => applyPatch(user(), ops as unknown[], { resourceType: USER_RESOURCE }), { name: 'ScimError', status: 400, scimType, detail }, name);
  }
  t.throws(() => patch(group([]), [{ op: 'add', path: 'userName', value: 'x' }], GROUP_RESOURCE), { name: 'ScimError', scimType: 'invalidPath', detail: /for Group/ });
  t.throws(() => patch(group([]), [{ op: 'add', path: 'members', value: [{ display: 'x' }] }], GROUP_RESOURCE), { name: 'ScimError', scimType: 'invalidValue', detail: /members\[0\]\.value is required/ });
  t.throws(() => patch(group([]), [{ op: 'replace', path: 'displayName', value: null }], GROUP_RESOURCE), { name: 'ScimError', scimType: 'invalidValue', detail: /displayName is required/ });
  const ok = patch(user(), Array.from({ length: MAX_PATCH_OPERATIONS }, () => ({ op: 'replace', path: 'title', value: 't' })));
  t.equal(ok['title'], 't', `${MAX_PATCH_OPERATIONS} operations are accepted`);
});

t.test('a failed PATCH changes nothing, and a good one does not mutate its input', async (t) => {
  const r = user({ [ENT]: { department: 'Sales' }, schemas: [CORE, ENT] });
  const before = structuredClone(r);
  t.throws(() =>
    patch(r, [
      { op: 'replace', path: 'active', value: false },
      { op: 'remove', path: `${ENT}:department` },
      { op: 'add', path: 'emails', value: [{ value: 'n@x', primary: true }] },
      { op: 'replace', path: 'nope', value: 1 },
    ]),
  );
  t.same(r, before, 'input untouched after a failure in a later operation');
  const out = patch(r, [
    { op: 'replace', path: 'active', value: false },
    { op: 'remove', path: `${ENT}:department` },
    { op: 'replace', path: 'emails[type eq "work"].value', value: 'n@x' },
  ]);
  t.same(r, before, 'input untouched after success');
  t.not(out['emails'], r['emails'], 'no shared nested objects');
  const g = group(['a', 'b']);
  const gBefore = structuredClone(g);
  patch(g, [{ op: 'Remove', path: 'members', value: [{ value: 'a' }] }], GROUP_RESOURCE);
  t.same(g, gBefore);
});

t.test('parsePatchRequest checks the PatchOp envelope', async (t) => {
  const ops = [{ op: 'replace', value: { active: false } }];
  t.same(parsePatchRequest({ schemas: [PATCH_OP_SCHEMA], Operations: ops }), ops);
  t.same(parsePatchRequest({ Operations: ops }), ops, 'schemas may be omitted');
  t.same(parsePatchRequest({ schemas: [PATCH_OP_SCHEMA], operations: ops }), ops, 'Operations in any case');
  const bad: [unknown, RegExp][] = [
    [null, /must be a JSON object/],
    [[], /must be a JSON object/],
    ['x', /must be a JSON object/],
    [{ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], Operations: ops }, /schemas must include/],
    [{ schemas: PATCH_OP_SCHEMA, Operations: ops }, /schemas must include/],
    [{ schemas: [PATCH_OP_SCHEMA] }, /needs an "Operations" array/],
    [{ schemas: [PATCH_OP_SCHEMA], Operations: {} }, /needs an "Operations" array/],
  ];
  for (const [body, detail] of bad) t.throws(() => parsePatchRequest(body), { name: 'ScimError', status: 400, scimType: 'invalidSyntax', detail }, JSON.stringify(body));
});

t.test('buildResource makes POST and PUT bodies canonical', async (t) => {
  const stored = user({ groups: [{ value: 'g1', display: 'G' }], meta: { resourceType: 'User', created: '2024-01-01T00:00:00Z' } });
  const put = buildResource(
    USER_RESOURCE,
    {
      schemas: [CORE, ENT],
      id: 'spoofed',
      userName: 'bjensen@example.com',
      name: { givenName: 'B' },
      active: 'False',
      password: 'secret',
      groups: [{ value: 'evil' }],
      meta: { created: '1999-01-01T00:00:00Z' },
      emails: [{ value: 'b@x', primary: 'true', type: 'work' }],
      [ENT]: { department: 'Ops', manager: { value: 'm', displayName: 'M' } },
      'urn:okta:custom:1.0:User': { favourite: 'x' },
      favouriteColour: 'blue',
    },
    stored,
  );
  t.same(put, {
    id: 'u1',
    meta: stored['meta'],
    groups: [{ value: 'g1', display: 'G' }],
    userName: 'bjensen@example.com',
    name: { givenName: 'B' },
    active: false,
    emails: [{ value: 'b@x', primary: true, type: 'work' }],
    [ENT]: { department: 'Ops', manager: { value: 'm' } },
    schemas: [CORE, ENT],
  });
  t.notOk('familyName' in (put['name'] as object), 'PUT replaces: omitted attributes are gone');
  const post = buildResource(USER_RESOURCE, { USERNAME: 'new', Active: true });
  t.same(post, { userName: 'new', active: true, schemas: [CORE] });
  const bad: [unknown, string, RegExp][] = [
    ['x', 'invalidSyntax', /User body must be a JSON object/],
    [{ name: { givenName: 'x' } }, 'invalidValue', /userName is required/],
    [{ userName: 5 }, 'invalidValue', /userName must be a string/],
    [{ userName: 'u', title: 't'.repeat(33) }, 'invalidValue', /title must be 1 to 32/],
    [{ userName: 'u', active: 'nope' }, 'invalidValue', /active must be true or false/],
  ];
  for (const [body, scimType, detail] of bad) t.throws(() => buildResource(USER_RESOURCE, body), { name: 'ScimError', status: 400, scimType, detail });
  t.throws(() => buildResource(GROUP_RESOURCE, { members: [] }), { name: 'ScimError', scimType: 'invalidValue', detail: /displayName is required/ });
});

t.test('unassigning an element value by filter drops that element only', async (t) => {
  const r = user({ emails: [{ value: 'w@x', type: 'work' }, { value: 'h@x', type: 'home' }] });
  const out = patch(r, [{ op: 'replace', path: 'emails[type eq "work"].value', value: null }]);
  t.same(out['emails'], [{ value: 'h@x', type: 'home' }]);
});
