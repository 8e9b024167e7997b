/** scim-data: the tenant and user bodies shared by bench/scim.ts and bench/scim-server.ts. */

export const BENCH_TENANT = 'bench/okta';

/** benchUserName is the userName of the i-th pre-filled user; the parent looks these up. */
export function benchUserName(i: number): string {
  return `user${String(i).padStart(6, '0')}@bench.example`;
}

/** benchUser is a typical Okta-provisioned user body. */
export function benchUser(userName: string, i: number): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    name: { givenName: `Given${i}`, familyName: `Family${i}` },
    displayName: `Given${i} Family${i}`,
    emails: [{ value: userName, primary: true, type: 'work' }],
    externalId: `00u${String(i).padStart(17, '0')}`,
    active: true,
  };
}
