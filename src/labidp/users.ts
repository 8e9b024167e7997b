/**
 * users: the lab IdP's user list. NOT FOR PRODUCTION: passwords are kept as given, in memory.
 *
 * A users file is JSON or YAML: a list (or `{ users: [...] }`) of
 *   { loginName: alice@lab.example, password: ..., displayName: Alice, department: Eng, groups: [a, b] }
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { YAMLParseError, parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** LabUser is one lab account; loginName is the email sent as NameID. */
export interface LabUser {
  readonly loginName: string;
  readonly password: string;
  readonly displayName: string;
  readonly department: string;
  /** groups become memberOf values: none, one or many. */
  readonly groups: readonly string[];
}

/** LabUsersError says why a users file cannot be used, in one line; `code` is stable. */
export class LabUsersError extends Error {
  constructor(
    readonly code: 'LAB_USERS_UNREADABLE' | 'LAB_USERS_NOT_YAML' | 'LAB_USERS_INVALID',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'LabUsersError';
  }
}

const userSchema = z.strictObject({
  loginName: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an email address'),
  password: z.string().min(1),
  displayName: z.string().default(''),
  department: z.string().default(''),
  groups: z.union([z.string(), z.array(z.string())]).default([]).transform((g) => (typeof g === 'string' ? [g] : g)),
});
// A list, or { users: [...] }. Chosen by shape rather than z.union, whose error for a union that
// fails every branch is a bare "Invalid input" at the root instead of the field at fault.
const listSchema = z.array(userSchema);
const objectSchema = z.strictObject({ users: listSchema }).transform((f) => f.users);

/** parseLabUsers validates a decoded users document, reporting every problem at once. */
export function parseLabUsers(doc: unknown, source = 'lab users'): LabUser[] {
  if (doc === null || doc === undefined) throw new LabUsersError('LAB_USERS_INVALID', `${source}: empty; expected a list of users or { users: [...] }`);
  const r = Array.isArray(doc) ? listSchema.safeParse(doc) : objectSchema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new LabUsersError('LAB_USERS_INVALID', `${source}: ${problems.join('; ')}`);
  }
  const seen = new Set<string>();
  for (const u of r.data) {
    const key = u.loginName.toLowerCase();
    if (seen.has(key)) throw new LabUsersError('LAB_USERS_INVALID', `${source}: ${u.loginName} appears twice`);
    seen.add(key);
  }
  return r.data.map((u) => Object.freeze({ ...u, groups: Object.freeze([...u.groups]) }));
}

/** loadLabUsers reads a JSON or YAML users file (YAML is a superset of JSON); it throws LabUsersError. */
export async function loadLabUsers(path: string): Promise<LabUser[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder' : (code ?? 'read failed');
    throw new LabUsersError('LAB_USERS_UNREADABLE', `cannot read users file ${path}: ${why}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) as unknown;
  } catch (err) {
    if (!(err instanceof YAMLParseError)) throw err;
    // The yaml package's message is one line naming the problem and its place, then a source excerpt.
    const first = err.message.split('\n', 1)[0]!.replace(/:$/, '');
    throw new LabUsersError('LAB_USERS_NOT_YAML', `${path}: not valid YAML: ${first}`, { cause: err });
  }
  return parseLabUsers(doc, path);
}

/** findLabUser checks a login name (case-insensitive) and password (constant time); null when wrong. */
export function findLabUser(users: readonly LabUser[], loginName: string, password: string): LabUser | null {
  const user = users.find((u) => u.loginName.toLowerCase() === loginName.trim().toLowerCase());
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  // Compare even for an unknown user, so timing does not tell which names exist.
  const ok = timingSafeEqual(digest(user?.password ?? '\0unknown'), digest(password));
  return user !== undefined && ok ? user : null;
}
