/**
 * Two Tollgate processes sharing one Redis: a sign-in started on A finishes on B, a session made on
 * A is honoured on B, a logout on A takes effect on B within a second; two IdPs picked by domain;
 * and SCIM deprovisioning on A cuts the user off on B, with a new sign-in refused as inactive.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, until } from '../helpers/redis.js';
import { startOrigin } from '../helpers/origin.js';
import { startNode } from '../helpers/node.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { htmlField } from '../helpers/saml.js';
import { connectVia, controlCall } from '../helpers/tollgate.js';
import type { ConfigInput } from '../../src/config/schema.js';

const CLOUD = 'tollgate.test';

t.test('two nodes on one Redis', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-multi-'));
  const redis = await startRedis();
  const origin = await startOrigin();
  const lab = await startLabIdpFixture({ id: 'lab' });
  const partner = await startLabIdpFixture({ id: 'partner', users: [{ loginName: 'carol@partner.test', password: 'carol-pw', displayName: 'Carol', department: 'Partners', groups: ['Contractors'] }] });
  const config: ConfigInput = {
    store: { type: 'redis', url: redis.url },
    logging: { level: 'info', accessLog: join(dir, 'access.log') },
    limits: { shutdownGraceMs: 1000 },
    locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true, surrogate: { enabled: true } }],
    connectPorts: [443, origin.port],
    hosts: { 'www.origin-a.test': '127.0.0.1' },
    idps: [lab.config({ domains: ['example.com'] }), partner.config({ default: false, domains: ['partner.test'], provisioning: 'scim' })],
  };
  const a = await startNode(dir, 'node-a', config);
  const b = await startNode(dir, 'node-b', config);
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([lab.close(), partner.close(), origin.close()]);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const site = `http://www.origin-a.test:${origin.port}/hello`;
  const statusOn = async (c: FlowClient) =>
    JSON.parse((await c.request(`http://ip.${CLOUD}/`, { headers: { accept: 'application/json' } })).body) as { authenticated: boolean; user: { loginName: string } | null; node: string };

  // A sign-in started on A (gateway, login-name form, IdP) and finished on B (ACS onwards).
  const alice = new FlowClient(a.proxyPort, '127.0.0.10');
  const gate = await alice.follow(site);
  t.equal(new URL(gate.url).host, `gateway.${CLOUD}`, 'two IdPs and no location mapping: the gateway asks for the login name');
  t.match(gate.reply.body, /name="username"/);
  const toIdp = await alice.request(`http://gateway.${CLOUD}/login`, { form: { r: htmlField(gate.reply.body, 'r')!, username: 'alice@example.com' } });
  t.equal(toIdp.status, 302);
  t.ok(String(toIdp.headers.location).startsWith(lab.idp.ssoUrl), 'example.com goes to the lab IdP');
  const form = await alice.request(String(toIdp.headers.location));
  const posted = await alice.request(new URL('/login', lab.idp.ssoUrl).href, { form: { pending: htmlField(form.body, 'pending')!, username: 'alice@example.com', password: 'alice-pw' } });
  alice.proxyPort = b.proxyPort; // the browser's next requests reach node B
  const done = await alice.follow(`http://login.${CLOUD}/sfc_sso`, { form: { SAMLResponse: htmlField(posted.body, 'SAMLResponse')!, RelayState: htmlField(posted.body, 'RelayState')! } });
  t.equal(done.reply.status, 200, 'the sign-in started on A finished on B');
  t.equal(done.url, site);
  const onB = await statusOn(alice);
  t.equal(onB.node, 'node-b');
  t.equal(onB.user?.loginName, 'alice@example.com');

  // A session made on B is honoured on A (cookie and surrogate).
  alice.proxyPort = a.proxyPort;
  const onA = await alice.request(site);
  t.equal(onA.status, 200, 'node A honours the session made on B');
  const tunA = await connectVia(a.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.10');
  t.equal(tunA.status, 200, "node A's CONNECT is attributed by the surrogate made on B");
  tunA.socket.destroy();

  // Logout on A takes effect on B within a second.
  const csrf = (JSON.parse((await alice.request(`http://ip.${CLOUD}/`, { headers: { accept: 'application/json' } })).body) as { logoutCsrf: string }).logoutCsrf;
  t.equal((await alice.request(`http://ip.${CLOUD}/logout`, { form: { csrf } })).status, 303, 'signed out on A');
  const out = Date.now();
  const onBAgain = new FlowClient(b.proxyPort, '127.0.0.10');
  for (const [h, jar] of alice.jar) onBAgain.jar.set(h, new Map(jar));
  await until(async () => (await onBAgain.request(site)).status === 307, 1000, 'B sends the signed-out browser to sign in');
  t.ok(Date.now() - out <= 1000, `B saw the logout after ${Date.now() - out} ms`);
  t.equal((await connectVia(b.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.10')).status, 403, "B's surrogate is gone too");

  // The second IdP (SCIM provisioning): unknown users are refused, provisioned ones get in.
  const carol = new FlowClient(a.proxyPort, '127.0.0.11');
  const refused = await carol.signIn(site, 'carol@partner.test', 'carol-pw');
  t.equal(refused.reply.status, 403, 'a user SCIM has not provisioned is refused');
  t.match(refused.reply.body, /SAML_UNKNOWN_USER/);
  t.ok(refused.idpPage.url.startsWith(partner.idp.ssoUrl), 'partner.test went to the partner IdP');

  const api = `http://127.0.0.1:${a.controlPort}`;
  const tokenReply = (await (await fetch(`${api}/admin/scim/token?idp=partner`, { method: 'POST', headers: a.admin })).json()) as { token: string };
  const scim = (method: string, path: string, body?: unknown) =>
    fetch(`${api}/1/partner/scim${path}`, {
      method,
      headers: { authorization: `Bearer ${tokenReply.token}`, 'content-type': 'application/scim+json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const created = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'carol@partner.test', active: true, displayName: 'Carol SCIM' });
  t.equal(created.status, 201);
  const carolId = ((await created.json()) as { id: string }).id;
  const inside = await carol.signIn(site, 'carol@partner.test', 'carol-pw');
  t.equal(inside.reply.status, 200, 'once provisioned, the user signs in');
  t.equal((await statusOn(carol)).user?.loginName, 'carol@partner.test');

  // A membership change reaches her live session on the other node, without a new sign-in.
  const carolOnB0 = new FlowClient(b.proxyPort, '127.0.0.11');
  for (const [h, jar] of carol.jar) carolOnB0.jar.set(h, new Map(jar));
  const groupReply = await scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Partner VPN', members: [{ value: carolId }] });
  t.equal(groupReply.status, 201, 'Group Push adds her to a group');
  await until(
    async () => ((JSON.parse((await carolOnB0.request(`http://ip.${CLOUD}/`, { headers: { accept: 'application/json' } })).body) as { user: { groups: string[] } | null }).user?.groups ?? []).includes('Partner VPN'),
    2000,
    'node B shows the new group on the status page',
  );
  t.pass('the new group shows on node B without a new sign-in');

  // Deprovisioning on A: B stops attributing her within a second; a new sign-in is refused as inactive.
  const carolOnB = new FlowClient(b.proxyPort, '127.0.0.11');
  for (const [h, jar] of carol.jar) carolOnB.jar.set(h, new Map(jar));
  t.equal((await carolOnB.request(site)).status, 200, 'B knows her before deactivation');
  const deact = await scim('PATCH', `/Users/${carolId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false } }] });
  t.equal(deact.status, 200, 'SCIM deactivates her');
  const cut = Date.now();
  await until(async () => (await carolOnB.request(site)).status === 307, 1000, 'B no longer attributes her');
  t.ok(Date.now() - cut <= 1000);
  t.equal((await connectVia(b.proxyPort, `www.origin-a.test:${origin.port}`, '127.0.0.11')).status, 403, 'nor by surrogate');
  const again = await carolOnB.signIn(site, 'carol@partner.test', 'carol-pw');
  t.equal(again.reply.status, 403, 'a new sign-in is refused');
  t.match(again.reply.body, /SAML_INACTIVE_USER/, 'with the inactive-user code');

  // Force re-authentication for everyone, asked of node B, reaches node A within a second.
  const dave = new FlowClient(a.proxyPort, '127.0.0.12');
  const daveIn = await dave.signIn(site, 'bob@example.com', 'bob-pw');
  t.equal(daveIn.reply.status, 200, 'signed in on A');
  const re = await controlCall(b.controlPort, 'POST', '/admin/reauth', b.admin);
  t.equal(re.status, 200, 'reauth asked of B');
  const asked = Date.now();
  await until(async () => (await dave.request(site)).status === 307, 1000, 'A sends the user to sign in again');
  t.ok(Date.now() - asked <= 1000, `A saw the re-authentication after ${Date.now() - asked} ms`);
});
