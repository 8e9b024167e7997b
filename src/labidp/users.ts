/**
 * users: the lab IdP's user list. NOT FOR PRODUCTION: passwords are kept as given, in memory.
 *
 * A users file is JSON or YAML: a list (or `{ users: [...] }`) of
 *   { loginName: alice@lab.example, password: ..., displayName: Alice, department: Eng, groups: [a, b] }
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
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

const userSchema = z.object({
  loginName: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an email address'),
  password: z.string().min(1),
  displayName: z.string().default(''),
  department: z.string().default(''),
  groups: z.union([z.string(), z.array(z.string())]).default([]).transform((g) => (typeof g === 'string' ? [g] : g)),
});
const fileSchema = z.union([z.array(userSchema), z.object({ users: z.array(userSchema) }).transform((f) => f.users)]);

/** parseLabUsers validates a decoded users document, reporting every problem at once. */
export function parseLabUsers(doc: unknown, source = 'lab users'): LabUser[] {
  const r = fileSchema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`${source}: ${problems.join('; ')}`);
  }
  const seen = new Set<string>();
  for (const u of r.data) {
    const key = u.loginName.toLowerCase();
    if (seen.has(key)) throw new Error(`${source}: ${u.loginName} appears twice`);
    seen.add(key);
  }
  return r.data.map((u) => Object.freeze({ ...u, groups: Object.freeze([...u.groups]) }));
}

/** loadLabUsers reads a JSON or YAML users file (YAML is a superset of JSON). */
export async function loadLabUsers(path: string): Promise<LabUser[]> {
  return parseLabUsers(parseYaml(await readFile(path, 'utf8')) as unknown, path);
}

/** findLabUser checks a login name (case-insensitive) and password (constant time); null when wrong. */
export function findLabUser(users: readonly LabUser[], loginName: string, password: string): LabUser | null {
  const user = users.find((u) => u.loginName.toLowerCase() === loginName.trim().toLowerCase());
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  // Compare even for an unknown user, so timing does not tell which names exist.
  const ok = timingSafeEqual(digest(user?.password ?? '\0unknown'), digest(password));
  return user !== undefined && ok ? user : null;
}
