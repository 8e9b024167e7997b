import t from 'tap';
import {
  childAttr,
  ENTERPRISE_USER_SCHEMA,
  GROUP_RESOURCE,
  resolveName,
  USER_RESOURCE,
  USER_SCHEMA,
  validateLengths,
} from '../../src/scim/attributes.js';
import { badRequest, SCIM_ERROR_SCHEMA, ScimError, toScimErrorBody } from '../../src/scim/errors.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';

t.test('resolveName finds canonical attributes in any case and namespace', async (t) => {
  const cases: [string, { schema: string; attr: string; sub?: string; extension: boolean }][] = [
    ['userName', { schema: CORE, attr: 'userName', extension: false }],
    ['USERNAME', { schema: CORE, attr: 'userName', extension: false }],
    [`${CORE}:userName`, { schema: CORE, attr: 'userName', extension: false }],
    [`${CORE.toUpperCase()}:USERNAME`, { schema: CORE, attr: 'userName', extension: false }],
    ['id', { schema: CORE, attr: 'id', extension: false }],
    ['externalid', { schema: CORE, attr: 'externalId', extension: false }],
    ['meta.lastmodified', { schema: CORE, attr: 'meta', sub: 'lastModified', extension: false }],
    ['name.givenName', { schema: CORE, attr: 'name', sub: 'givenName', extension: false }],
    ['manager', { schema: CORE, attr: 'manager', extension: false }],
    ['employeeNumber', { schema: CORE, attr: 'employeeNumber', extension: false }],
    [`${ENT}:manager`, { schema: ENT, attr: 'manager', extension: true }],
    [`${ENT}:manager.value`, { schema: ENT, attr: 'manager', sub: 'value', extension: true }],
    [`${ENT}:employeeNumber`, { schema: ENT, attr: 'employeeNumber', extension: true }],
    ['department', { schema: ENT, attr: 'department', extension: true }],
    ['costCenter', { schema: ENT, attr: 'costCenter', extension: true }],
    ['groups.$ref', { schema: CORE, attr: 'groups', sub: '$ref', extension: false }],
  ];
  for (const [text, want] of cases) {
    const r = resolveName(USER_RESOURCE, text);
    t.match(r, { kind: 'attr', schema: { id: want.schema }, attr: { name: want.attr }, extension: want.extension }, text);
    if (typeof r !== 'string' && r.kind === 'attr') t.equal(r.sub?.name, want.sub, `${text} sub`);
  }
  t.match(resolveName(USER_RESOURCE, ENT.toLowerCase()), { kind: 'schema', schema: { id: ENT } });
  t.match(resolveName(GROUP_RESOURCE, 'MEMBERS.value'), { kind: 'attr', attr: { name: 'members' }, sub: { name: 'value' } });

  const bad: [string, RegExp][] = [
    ['nope', /unknown attribute "nope" for User/],
    ['name.nope', /"name" has no sub-attribute "nope"/],
    ['userName.x', /"userName" has no sub-attribute "x"/],
    ['a.b.c', /more than one sub-attribute level/],
    ['1abc', /not a valid attribute name/],
    ['user name', /not a valid attribute name/],
    ['', /not a valid attribute name/],
    [CORE, /core schema .* cannot be addressed as a whole/],
    ['urn:example:ext:1.0:User:foo', /unknown schema "urn:example:ext:1.0:User"/],
    [`${ENT}:nope`, /unknown attribute "nope"/],
    [`${ENT}:userName`, /unknown attribute "userName"/],
  ];
  for (const [text, detail] of bad) t.match(resolveName(USER_RESOURCE, text), detail, JSON.stringify(text));
  t.match(resolveName(GROUP_RESOURCE, 'department'), /unknown attribute "department" for Group/);
  t.match(resolveName(GROUP_RESOURCE, `${ENT}:department`), /unknown schema/);
});

t.test('the tables carry the RFC 7643 characteristics the server relies on', async (t) => {
  const attr = (n: string) => childAttr(USER_SCHEMA, n);
  t.match(attr('userName'), { type: 'string', caseExact: false, mutability: 'readWrite' });
  t.match(attr('active'), { type: 'boolean' });
  t.match(attr('password'), { mutability: 'writeOnly', returned: 'never' });
  t.match(attr('groups'), { mutability: 'readOnly', multiValued: true });
  t.match(attr('emails'), { type: 'complex', multiValued: true });
  t.match(resolveName(USER_RESOURCE, 'id'), { attr: { caseExact: true, mutability: 'readOnly', returned: 'always' } });
  t.match(resolveName(USER_RESOURCE, 'externalId'), { attr: { caseExact: true, mutability: 'readWrite' } });
  t.match(resolveName(USER_RESOURCE, 'meta'), { attr: { mutability: 'readOnly' } });
  t.match(childAttr(ENTERPRISE_USER_SCHEMA, 'manager'), { type: 'complex', multiValued: false });
  t.match(resolveName(GROUP_RESOURCE, 'members.value'), { sub: { caseExact: true } });
  const wa = ['manager', 'title', 'streetAddress', 'city', 'state', 'zipCode', 'countryCode', 'postalAddress', 'locale', 'mobilePhones', 'preferredLanguage', 'employeeNumber'];
  for (const n of wa) t.match(attr(n), { type: 'string', multiValued: false, minLength: 1 }, `${n} is a Workflow Automation string`);
});

t.test('validateLengths enforces the Workflow Automation limits', async (t) => {
  const limits: [string, number][] = [
    ['manager', 128],
    ['streetAddress', 64],
    ['title', 32],
    ['city', 32],
    ['state', 32],
    ['zipCode', 32],
    ['countryCode', 32],
    ['postalAddress', 32],
    ['locale', 32],
    ['mobilePhones', 32],
    ['preferredLanguage', 32],
    ['employeeNumber', 32],
  ];
  for (const [name, max] of limits) {
    t.doesNotThrow(() => validateLengths({ userName: 'u', [name]: 'x' }), `${name} of 1`);
    t.doesNotThrow(() => validateLengths({ userName: 'u', [name]: 'x'.repeat(max) }), `${name} of ${max}`);
    t.throws(() => validateLengths({ [name]: 'x'.repeat(max + 1) }), {
      name: 'ScimError',
      status: 400,
      scimType: 'invalidValue',
      detail: `${name} must be 1 to ${max} characters long`,
    });
    t.throws(() => validateLengths({ [name]: '' }), { name: 'ScimError', scimType: 'invalidValue', detail: new RegExp(`^${name} `) });
    t.throws(() => validateLengths({ [name]: 7 }), { name: 'ScimError', scimType: 'invalidValue', detail: `${name} must be a string` });
  }
  t.doesNotThrow(() => validateLengths({ userName: 'u', title: null }), 'null is unassigned');
  t.doesNotThrow(() => validateLengths({ userName: 'u' }), 'absent passes');
  t.doesNotThrow(() => validateLengths({ CITY: '😀'.repeat(32) }), 'characters, not UTF-16 units, are counted');
  t.throws(() => validateLengths({ CITY: 'x'.repeat(33) }), { name: 'ScimError', detail: /^city / }, 'any-case keys are checked, named canonically');
  t.doesNotThrow(() => validateLengths({ [ENT]: { department: 'd'.repeat(200) } }), 'the enterprise extension is not limited');
});

t.test('errors render as RFC 7644 §3.12 bodies', async (t) => {
  t.same(toScimErrorBody(badRequest('invalidFilter', 'filter is empty')), {
    schemas: [SCIM_ERROR_SCHEMA],
    status: '400',
    scimType: 'invalidFilter',
    detail: 'filter is empty',
  });
  t.same(toScimErrorBody(new ScimError(404, undefined, 'User not found')), {
    schemas: [SCIM_ERROR_SCHEMA],
    status: '404',
    detail: 'User not found',
  });
  t.same(toScimErrorBody(new TypeError('secret internals at /srv/x.js')), {
    schemas: [SCIM_ERROR_SCHEMA],
    status: '500',
    detail: 'internal server error',
  });
  t.same(toScimErrorBody('thrown string'), { schemas: [SCIM_ERROR_SCHEMA], status: '500', detail: 'internal server error' });
  const e = new ScimError(409, 'uniqueness', 'userName is taken');
  t.ok(e instanceof Error);
  t.equal(e.name, 'ScimError');
  t.equal(e.message, 'userName is taken');
  t.equal(typeof toScimErrorBody(e).status, 'string');
});
