import t from 'tap';
import { GROUP_RESOURCE, USER_RESOURCE } from '../../src/scim/attributes.js';
import { ScimError } from '../../src/scim/errors.js';
import {
  equalityLookup,
  matches,
  MAX_FILTER_DEPTH,
  MAX_FILTER_LENGTH,
  parseFilter,
  parsePath,
} from '../../src/scim/filter.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';

const barbara = {
  schemas: [CORE, ENT],
  id: 'a1b2-C3',
  externalId: 'Ext-42',
  userName: 'BJensen@Example.com',
  name: { givenName: 'Barbara', familyName: "O'Malley" },
  displayName: 'Babs Jensen',
  title: 'Tour Guide',
  active: true,
  emails: [
    { value: 'bjensen@example.com', type: 'work', primary: true },
    { value: 'babs@jensen.org', type: 'home' },
  ],
  phoneNumbers: [],
  meta: { resourceType: 'User', created: '2011-08-01T18:29:49.793Z', lastModified: '2011-08-01T20:29:49+02:00' },
  [ENT]: { department: 'Sales', employeeNumber: '701984', manager: { value: 'm-26118915' } },
};

/** A user stored with client casing: lookups still find the attributes. */
const shouting = { ID: 'x', USERNAME: 'shout', Emails: [{ VALUE: 'a@b.c', Type: 'work' }] };

const group = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
  id: 'g1',
  displayName: 'Tour Guides',
  members: [{ value: 'a1b2-C3', display: 'Babs' }, { value: 'zz-9' }],
};

t.test('user filters evaluate per RFC 7644 §3.4.2.2', async (t) => {
  const cases: [string, boolean][] = [
    ['userName eq "bjensen@example.com"', true],
    ['USERNAME EQ "BJENSEN@EXAMPLE.COM"', true],
    ['userName ne "bjensen@example.com"', false],
    ['userName ne "someone"', true],
    [`${CORE}:userName sw "bj"`, true],
    ['userName co "@EXAMPLE"', true],
    ['userName ew ".COM"', true],
    ['userName sw "x"', false],
    ['id eq "a1b2-C3"', true],
    ['id eq "A1B2-c3"', false],
    ['externalId eq "ext-42"', false],
    ['externalId eq "Ext-42"', true],
    ['name.familyName co "O\'Malley"', true],
    ['name.givenName eq "barbara"', true],
    ['name.middleName pr', false],
    ['name pr', true],
    ['title pr', true],
    ['nickName pr', false],
    ['phoneNumbers pr', false],
    ['active eq true', true],
    ['active eq false', false],
    ['active eq "True"', true],
    ['active ne false', true],
    ['emails co "jensen.org"', true],
    ['emails.value co "jensen.org"', true],
    ['emails.type eq "work"', true],
    ['emails.type eq "other"', false],
    ['emails[type eq "work"]', true],
    ['emails[type eq "work" and value co "@example.com"]', true],
    ['emails[type eq "home" and primary eq true]', false],
    ['emails[type eq "work" and primary eq true]', true],
    ['emails[not (type eq "work")]', true],
    ['emails[type eq "work"].value eq "BJENSEN@example.com"', true],
    ['emails[type eq "home"].value eq "bjensen@example.com"', false],
    [`${ENT}:department eq "sales"`, true],
    ['urn:IETF:params:scim:schemas:extension:enterprise:2.0:user:Department eq "SALES"', true],
    ['department eq "Sales"', true],
    [`${ENT}:manager.value eq "m-26118915"`, true],
    [`${ENT}:manager.value eq "M-26118915"`, false],
    [`${ENT}:employeeNumber gt "7"`, true],
    ['meta.created gt "2011-01-01T00:00:00Z"', true],
    ['meta.lastModified eq "2011-08-01T18:29:49Z"', true],
    ['meta.lastModified ge "2011-08-01T18:29:49Z"', true],
    ['meta.lastModified gt "2011-08-01T18:29:49Z"', false],
    ['meta.lastModified lt "2011-08-01T18:29:50Z"', true],
    ['meta.lastModified le "2011-08-01T18:29:48Z"', false],
    ['meta.resourceType eq "User"', true],
    ['userName gt "a"', true],
    ['userName lt "a"', false],
    ['title eq null', false],
    ['nickName eq null', true],
    ['nickName ne "x"', true],
    ['userName eq "x" or userName eq "bjensen@example.com"', true],
    ['userName eq "x" or userName eq "y" and active eq true', false],
    ['userName eq "bjensen@example.com" or userName eq "y" and active eq false', true],
    ['(userName eq "bjensen@example.com" or userName eq "y") and active eq false', false],
    ['not (active eq false)', true],
    ['not(active eq true) or not (title pr)', false],
    ['userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', false],
    ['title pr and (emails co "example.com" or emails.value co "example.org")', true],
    ['  userName   eq\t"bjensen@example.com"  ', true],
    ['userName eq "b\\u006aensen@example.com"', true],
  ];
  for (const [f, want] of cases) t.equal(matches(parseFilter(f, USER_RESOURCE), barbara), want, f);
});

t.test('attribute names match in any case in the stored resource too', async (t) => {
  t.ok(matches(parseFilter('userName eq "SHOUT"', USER_RESOURCE), shouting));
  t.ok(matches(parseFilter('emails[type eq "work"].value eq "a@b.c"', USER_RESOURCE), shouting));
  t.ok(matches(parseFilter('id eq "x"', USER_RESOURCE), shouting));
});

t.test('group filters, including member tests', async (t) => {
  const cases: [string, boolean][] = [
    ['displayName eq "tour guides"', true],
    ['members[value eq "zz-9"]', true],
    ['members[value eq "ZZ-9"]', false],
    ['members eq "a1b2-C3"', true],
    ['members.display co "babs"', true],
    ['id eq "g1" and members eq "zz-9"', true],
    ['externalId pr', false],
  ];
  for (const [f, want] of cases) t.equal(matches(parseFilter(f, GROUP_RESOURCE), group), want, f);
});

t.test('precedence: not binds tighter than and, and tighter than or', async (t) => {
  const ast = parseFilter('title pr or userName pr and not (active eq true)', USER_RESOURCE);
  t.equal(ast.op, 'or');
  t.match(ast, { filters: [{ op: 'pr' }, { op: 'and', filters: [{ op: 'pr' }, { op: 'not' }] }] });
  t.match(parseFilter('title pr and userName pr and nickName pr', USER_RESOURCE), {
    op: 'and',
    filters: [{}, {}, {}],
  });
});

t.test('invalid filters are 400 invalidFilter with a precise detail', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /is empty/],
    ['   ', /is empty/],
    ['userName', /ended early: expected an operator/],
    ['userName eq', /ended early: expected a value after 'eq'/],
    ['userName eq bjensen', /character 13: expected a value .* found 'bjensen'/],
    ['userName equals "x"', /character 10: expected an operator/],
    ['userName eq "x" and', /ended early: expected an attribute name/],
    ['and userName eq "x"', /unknown attribute "and"/],
    ['userName eq "x" userName eq "y"', /character 17: expected 'and', 'or' or the end/],
    ['userName eq "x" xor title pr', /character 17: expected 'and', 'or'/],
    ['(userName eq "x"', /ended early: expected '\)'/],
    ['userName eq "x")', /character 16: expected no unmatched \)/],
    ['()', /character 2: expected an attribute name, found '\)'/],
    ['not userName eq "x"', /character 5: expected '\(' after 'not'/],
    ['not (userName eq "x"', /expected '\)' closing 'not \('/],
    ['"userName" eq "x"', /character 1: expected an attribute name/],
    ['userName eq "x', /unterminated string starting at character 13/],
    ['userName eq "bad \\q escape"', /invalid string literal at character 13/],
    ['userName eq \'x\'', /unexpected character '''/],
    ['userName eq "x" && title pr', /unexpected character '&'/],
    ['foo eq "x"', /character 1: unknown attribute "foo" for User/],
    ['name.nope eq "x"', /"name" has no sub-attribute "nope"/],
    ['name.givenName.first eq "x"', /more than one sub-attribute level/],
    ['urn:example:custom:2.0:User:foo eq "x"', /unknown schema "urn:example:custom:2.0:User"/],
    [ENT + ' pr', /names a schema, not an attribute/],
    ['emails[type eq "work"', /ended early: expected '\]'/],
    ['emails[foo eq "work"]', /unknown sub-attribute "foo" of "emails"/],
    ['emails[type[value eq "x"] eq "y"]', /value filters cannot nest/],
    ['userName[value eq "x"]', /not a complex attribute/],
    ['emails[type eq "work"].nope eq "x"', /unknown sub-attribute "nope"/],
    ['emails[type eq "work"].value', /expected an operator/],
    ['name eq "x"', /"name", which is complex/],
    ['active gt true', /'gt' on "active", which is boolean/],
    ['active co "t"', /'co' on "active", which is boolean/],
    ['active eq "yes"', /"active", which is boolean, with "yes"/],
    ['active eq 1', /which is boolean, with 1/],
    ['userName eq 42', /which is a string, with 42: quote the value/],
    ['userName eq true', /which is a string, with true/],
    ['userName co null', /'co' on "userName" with a value that is not a string/],
    ['userName gt null', /'gt' on "userName" with null/],
    ['meta.created gt "yesterday"', /"yesterday", which is not a dateTime/],
    ['x509Certificates.value lt "abc"', /'lt' on "x509Certificates.value", which is binary/],
    ['userName eq 01', /expected a value/],
    ['9lives eq "x"', /character 1: expected an attribute name/],
  ];
  for (const [f, detail] of cases) {
    t.throws(() => parseFilter(f, USER_RESOURCE), { name: 'ScimError', status: 400, scimType: 'invalidFilter', detail }, JSON.stringify(f));
  }
  t.throws(() => parseFilter('userName eq "x"', GROUP_RESOURCE), { name: 'ScimError', scimType: 'invalidFilter', detail: /unknown attribute "userName" for Group/ });
  t.throws(() => parseFilter(undefined as unknown as string, USER_RESOURCE), { name: 'ScimError', scimType: 'invalidFilter' });
});

t.test('filter input is bounded', async (t) => {
  const long = 'userName eq "' + 'a'.repeat(MAX_FILTER_LENGTH) + '"';
  t.throws(() => parseFilter(long, USER_RESOURCE), { name: 'ScimError', scimType: 'invalidFilter', detail: /longer than 4096/ });
  const nest = (n: number) => '('.repeat(n) + 'userName pr' + ')'.repeat(n);
  t.ok(matches(parseFilter(nest(MAX_FILTER_DEPTH), USER_RESOURCE), barbara));
  t.throws(() => parseFilter(nest(MAX_FILTER_DEPTH + 1), USER_RESOURCE), { name: 'ScimError', detail: /nests deeper than 32/ });
  const nots = 'not ('.repeat(MAX_FILTER_DEPTH + 1) + 'userName pr' + ')'.repeat(MAX_FILTER_DEPTH + 1);
  t.throws(() => parseFilter(nots, USER_RESOURCE), { name: 'ScimError', detail: /nests deeper/ });
  // A long flat chain stays within the length bound and evaluates without deep recursion.
  const chain = Array.from({ length: 200 }, () => 'title pr').join(' and ');
  t.ok(matches(parseFilter(chain, USER_RESOURCE), barbara));
  t.type(new ScimError(400, 'invalidFilter', 'x'), Error);
});

t.test('equalityLookup recognises filters an index can answer', async (t) => {
  const users: [string, unknown][] = [
    ['userName eq "Bob"', { attr: 'username', value: 'Bob' }],
    ['USERNAME eq "Bob"', { attr: 'username', value: 'Bob' }],
    [`${CORE}:userName eq "Bob"`, { attr: 'username', value: 'Bob' }],
    ['externalId eq "e-1"', { attr: 'externalid', value: 'e-1' }],
    ['id eq "u-1"', { attr: 'id', value: 'u-1' }],
    ['userName eq "a" and active eq true', null],
    ['userName ne "Bob"', null],
    ['userName sw "Bob"', null],
    ['userName eq null', null],
    ['displayName eq "Bob"', null],
    ['emails.value eq "Bob"', null],
    [`${ENT}:employeeNumber eq "1"`, null],
    ['(userName eq "Bob")', { attr: 'username', value: 'Bob' }],
  ];
  for (const [f, want] of users) t.same(equalityLookup(parseFilter(f, USER_RESOURCE)), want, f);
  t.same(equalityLookup(parseFilter('displayName eq "Ops"', GROUP_RESOURCE)), { attr: 'displayname', value: 'Ops' });
  t.same(equalityLookup(parseFilter('externalId eq "x"', GROUP_RESOURCE)), { attr: 'externalid', value: 'x' });
});

t.test('PATCH paths parse into target, value filter and sub-attribute', async (t) => {
  const ok: [string, { attr?: string; sub?: string; filter?: boolean; after?: string; schema?: string }][] = [
    ['userName', { attr: 'userName' }],
    ['NAME.GIVENNAME', { attr: 'name', sub: 'givenName' }],
    [`${ENT}:department`, { attr: 'department' }],
    [`${ENT}:manager.value`, { attr: 'manager', sub: 'value' }],
    ['emails[type eq "work"]', { attr: 'emails', filter: true }],
    ['emails[type eq "work"].value', { attr: 'emails', filter: true, after: 'value' }],
    [`${CORE}:emails[type eq "work"].value`, { attr: 'emails', filter: true, after: 'value' }],
    ['addresses[type eq "work"].streetAddress', { attr: 'addresses', filter: true, after: 'streetAddress' }],
    [ENT, { schema: ENT }],
  ];
  for (const [p, want] of ok) {
    const r = parsePath(p, USER_RESOURCE);
    if (want.schema !== undefined) {
      t.match(r.target, { kind: 'schema', schema: { id: want.schema } }, p);
      continue;
    }
    t.match(r.target, { kind: 'attr', attr: { name: want.attr } }, p);
    if (r.target.kind === 'attr') t.equal(r.target.sub?.name, want.sub, `${p} sub`);
    t.equal(r.filter !== undefined, want.filter ?? false, `${p} filter`);
    t.equal(r.sub?.name, want.after, `${p} sub after ]`);
  }
  const members = parsePath('members[value eq "2819c223"]', GROUP_RESOURCE);
  t.ok(members.filter && matches(members.filter, { value: '2819c223' }));
  t.notOk(members.filter && matches(members.filter, { value: 'other' }));

  const bad: [string, RegExp][] = [
    ['', /is empty/],
    ['nope', /unknown attribute "nope"/],
    ['name.nope', /no sub-attribute "nope"/],
    ['urn:example:custom:User:foo', /unknown schema/],
    ['userName[value eq "x"]', /"userName", which is not multi-valued/],
    ['name[givenName eq "x"]', /not multi-valued/],
    ['emails[type eq "work"', /expected '\]'/],
    ['emails[type eq "work"].nope', /unknown sub-attribute "nope"/],
    ['emails[type eq "work"] extra', /expected the end of the path/],
    ['emails[bogus eq "x"]', /unknown sub-attribute "bogus"/],
    ['emails[type eq work]', /expected a value/],
    [ENT + '[department eq "x"]', /value filter on a schema/],
    ['userName x', /character 10: expected the end of the path, found 'x'/],
  ];
  for (const [p, detail] of bad) {
    t.throws(() => parsePath(p, USER_RESOURCE), { name: 'ScimError', status: 400, scimType: 'invalidPath', detail }, JSON.stringify(p));
  }
});
