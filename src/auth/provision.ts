/**
 * provision: what a successful SAML login does to the directory, per the IdP's provisioning mode.
 *
 *   jit:  create or update the user, their department and their groups from the assertion
 *         (SAML auto-provisioning); groups the user left are left, if JIT made them
 *   scim: the user must already exist (the IdP provisions through SCIM) and be active
 *
 * Either way the login then carries the directory's id, so deprovisioning can find its sessions.
 */
import type { Directory } from '../directory/directory.js';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP, SCHEMA_USER } from '../scim/attributes.js';
import { ScimError } from '../scim/errors.js';
import type { ScimResource } from '../scim/patch.js';
import { SamlError, type SamlIdentity } from './saml.js';

/** LoginUser is the directory's view of who signed in. */
export interface LoginUser {
  readonly userId: string;
  readonly loginName: string;
  readonly displayName: string;
  readonly department: string;
  readonly groups: readonly string[];
}

/** provisionLogin applies the IdP's provisioning mode to a verified identity. */
export async function provisionLogin(dir: Directory, tenant: string, mode: 'jit' | 'scim', who: SamlIdentity): Promise<LoginUser> {
  if (mode === 'scim') {
    const u = await dir.lookupLogin(tenant, who.loginName);
    if (u === null) throw new SamlError('SAML_UNKNOWN_USER', `${who.loginName} is not in the directory of ${tenant} (SCIM provisioning)`);
    if (!u.active) throw new SamlError('SAML_INACTIVE_USER', `${who.loginName} is deactivated in ${tenant}`);
    return { userId: u.id, loginName: u.userName, displayName: u.displayName ?? who.displayName, department: u.department ?? who.department, groups: u.groups };
  }
  const userId = await upsertUser(dir, tenant, who);
  await syncGroups(dir, tenant, userId, who.groups);
  return { userId, loginName: who.loginName, displayName: who.displayName, department: who.department, groups: [...new Set(who.groups)] };
}

/** upsertUser creates the user, or updates display name and department; a deactivated user stays refused. */
async function upsertUser(dir: Directory, tenant: string, who: SamlIdentity): Promise<string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await dir.lookupLogin(tenant, who.loginName);
    if (found !== null) {
      if (!found.active) throw new SamlError('SAML_INACTIVE_USER', `${who.loginName} is deactivated in ${tenant}`);
      if ((found.displayName ?? '') !== who.displayName || (found.department ?? '') !== who.department) {
        await dir.updateUser(tenant, found.id, (cur) => withProfile(cur, who));
      }
      return found.id;
    }
    try {
      const rec = await dir.createUser(tenant, withProfile({ schemas: [SCHEMA_USER], userName: who.loginName, active: true }, who), { source: 'jit' });
      return rec.id;
    } catch (err) {
      // Two first logins of one user at once: the other created it; read it back.
      if (!(err instanceof ScimError && err.status === 409)) throw err;
    }
  }
  throw new Error(`could not create or find ${who.loginName} in ${tenant}`);
}

function withProfile(cur: ScimResource, who: SamlIdentity): ScimResource {
  const next: ScimResource = { ...cur };
  if (who.displayName !== '') next['displayName'] = who.displayName;
  if (who.department !== '') {
    const schemas = Array.isArray(next['schemas']) ? (next['schemas'] as string[]) : [SCHEMA_USER];
    next['schemas'] = schemas.includes(SCHEMA_ENTERPRISE_USER) ? schemas : [...schemas, SCHEMA_ENTERPRISE_USER];
    next[SCHEMA_ENTERPRISE_USER] = { ...((next[SCHEMA_ENTERPRISE_USER] as object | undefined) ?? {}), department: who.department };
  }
  return next;
}

/** syncGroups makes the user a member of each named group (created on first use) and of no other JIT group. */
async function syncGroups(dir: Directory, tenant: string, userId: string, names: readonly string[]): Promise<void> {
  const want = new Map(names.filter((n) => n !== '').map((n) => [n.toLowerCase(), n]));
  const user = await dir.getUser(tenant, userId);
  const have = new Map<string, string>(); // lower-case name -> group id
  for (const g of (user?.resource['groups'] as { value: string; display?: string }[] | undefined) ?? []) have.set((g.display ?? '').toLowerCase(), g.value);
  for (const [key, name] of want) {
    if (have.has(key)) continue;
    await addMember(dir, tenant, name, userId);
  }
  for (const [key, gid] of have) {
    if (want.has(key)) continue;
    const g = await dir.getGroup(tenant, gid, { expand: false });
    if (g?.source !== 'jit') continue;
    await dir.updateGroup(tenant, gid, (cur) => ({ ...cur, members: ((cur['members'] as { value: string }[] | undefined) ?? []).filter((m) => m.value !== userId) }));
  }
}

async function addMember(dir: Directory, tenant: string, name: string, userId: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const gid = await dir.idByName(tenant, 'Group', name);
    if (gid !== null) {
      await dir.updateGroup(tenant, gid, (cur) => {
        const members = (cur['members'] as { value: string }[] | undefined) ?? [];
        return members.some((m) => m.value === userId) ? cur : { ...cur, members: [...members, { value: userId }] };
      });
      return;
    }
    try {
      await dir.createGroup(tenant, { schemas: [SCHEMA_GROUP], displayName: name, members: [{ value: userId }] }, { source: 'jit' });
      return;
    } catch (err) {
      if (!(err instanceof ScimError && err.status === 409)) throw err;
    }
  }
}
