import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ScimTokens, VERIFIED_TTL_MS } from '../../src/scim/tokens.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';

/**
 * twoNodes gives each of two nodes its ScimTokens over its own store instance on one file (as two
 * nodes share one Redis), with one fake clock.
 */
async function twoNodes(t: Test): Promise<{ here: ScimTokens; there: ScimTokens; hereStore: EmbeddedStore; clock: { now: number } }> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-tokens-'));
  const a = new EmbeddedStore({ path: dir });
  const b = new EmbeddedStore({ path: dir });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  });
  const clock = { now: Date.now() };
  return { here: new ScimTokens(a, () => clock.now), there: new ScimTokens(b, () => clock.now), hereStore: a, clock };
}

t.test('a new token works at once on every node; the old one stops at once where it was rotated', async (t) => {
  const { here, there } = await twoNodes(t);
  const old = await here.generate('acme/okta');
  t.ok(await there.verify('acme/okta', old), 'the other node reads the token from the store');
  const fresh = await here.generate('acme/okta');
  t.notOk(await here.verify('acme/okta', old), 'refused at once on the node that rotated it');
  t.ok(await there.verify('acme/okta', fresh), 'a token the other node does not know yet is read from the store, not refused');
  t.notOk(await there.verify('acme/okta', old), 'and from then on the old one is refused there too');
});

t.test('another node refuses a rotated token within a second', async (t) => {
  const { here, there, clock } = await twoNodes(t);
  const old = await here.generate('acme/okta');
  t.ok(await there.verify('acme/okta', old), 'the other node remembers it');
  await here.generate('acme/okta');
  clock.now += VERIFIED_TTL_MS - 1;
  t.ok(await there.verify('acme/okta', old), 'still accepted from memory just under the bound');
  clock.now += 1;
  t.notOk(await there.verify('acme/okta', old), 'refused once the memory is a second old');
});

t.test('a clock that goes back does not keep a rotated token alive', async (t) => {
  const { here, there, clock } = await twoNodes(t);
  const old = await here.generate('acme/okta');
  t.ok(await there.verify('acme/okta', old), 'the other node remembers it');
  await here.generate('acme/okta');
  clock.now -= 60_000;
  t.notOk(await there.verify('acme/okta', old), 'a memory from the future is read again');
});

t.test('revoking counts at once for every ScimTokens on the same store; wrong tokens are always refused', async (t) => {
  const { here, hereStore, clock } = await twoNodes(t);
  const token = await here.generate('acme/okta');
  t.ok(await here.verify('acme/okta', token), 'the current token');
  t.notOk(await here.verify('acme/okta', token + 'x'), 'a wrong token');
  t.notOk(await here.verify('acme/entra', token), "another tenant's base URL");
  t.notOk(await here.verify('acme/okta', ''), 'an empty token');
  // The admin API and the SCIM handler may hold separate instances over one store.
  const admin = new ScimTokens(hereStore, () => clock.now);
  await admin.revoke('acme/okta');
  t.notOk(await here.verify('acme/okta', token), 'revoked through another instance: refused at once');
});
