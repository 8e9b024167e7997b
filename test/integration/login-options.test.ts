/**
 * Sign-in settings: unknown sources that must authenticate, per-session cookies, org-specific
 * entity IDs, and an IdP mapped to a location skipping the login-name question.
 */
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import { startTestTollgate, testConfig, viaProxy } from '../helpers/tollgate.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { COOKIE_NAME } from '../../src/auth/identify.js';

t.test('unknown sources that must authenticate, per-session cookies, org-specific entity ID', async (t) => {
  const origin = await startOrigin();
  const lab = await startLabIdpFixture({ orgSpecific: '4242' });
  const tg = await startTestTollgate((dir) =>
    testConfig(dir, {
      orgId: '4242',
      locations: [{ name: 'lab', ips: ['127.0.0.0/26'] }],
      unknownSources: 'authenticate',
      hosts: { 'www.site.test': '127.0.0.1' },
      idps: [lab.config({ orgSpecificEntityId: true })],
      authentication: { frequency: 'perSession' },
    }),
  );
  t.teardown(async () => {
    await tg.close();
    await lab.close();
    await origin.close();
  });
  const site = `http://www.site.test:${origin.port}/hello`;
  const meta = await viaProxy(tg.proxyPort, 'http://login.tollgate.test/saml/metadata/lab');
  t.match(meta.body, 'entityID="https://login.tollgate.test/sfc_sso/4242"', 'org-specific SP entity ID in the metadata');

  const roamer = new FlowClient(tg.proxyPort, '127.0.0.100');
  t.equal((await roamer.request(site)).status, 307, 'an unknown source is sent to sign in, not refused');
  const signed = await roamer.signIn(site, 'bob@example.com', 'bob-pw');
  t.equal(signed.reply.status, 200, 'and gets through after signing in (org-specific audience accepted)');
  const cookieHops = signed.hops.filter((h) => h.status === 307);
  t.ok(cookieHops.length >= 2);
  const planted = await roamer.request(site);
  t.equal(planted.status, 200, 'the cookie identifies later requests');
  t.match((await roamer.follow('http://ip.tollgate.test/')).reply.body, /bob@example\.com/, 'the status page learns the user from the gateway');
  const status = JSON.parse((await roamer.request('http://ip.tollgate.test/', { headers: { accept: 'application/json' } })).body) as { location: string | null; user: { groups: string[] } | null };
  t.equal(status.location, null, 'no location');
  t.same(status.user?.groups, ['Sales'], 'a single memberOf value is one group');
  const curl = await viaProxy(tg.proxyPort, site, { localAddress: '127.0.0.100', headers: { 'user-agent': 'curl/8' } });
  t.equal(curl.status, 403, 'without a location there is no surrogate: other clients on that IP are not identified');

  // perSession: our cookies carry no Max-Age, so the browser forgets them when it closes.
  const fresh = new FlowClient(tg.proxyPort, '127.0.0.101');
  const raw = await fresh.obtainResponse(site, 'alice@example.com', 'alice-pw');
  const acs = await fresh.request(raw.acsUrl, { form: { SAMLResponse: raw.samlResponse, RelayState: raw.relayState } });
  const complete = await fresh.request(String(acs.headers.location));
  const setCookie = String(complete.headers['set-cookie']?.find((c) => c.startsWith(COOKIE_NAME)));
  t.match(setCookie, new RegExp(`^${COOKIE_NAME}=[A-Za-z0-9_-]+; Path=/; HttpOnly; SameSite=Lax$`), `per-session cookie: ${setCookie}`);
});

t.test('an IdP mapped to the location is used without asking for the login name', async (t) => {
  const origin = await startOrigin();
  const lab = await startLabIdpFixture({ id: 'lab' });
  const partner = await startLabIdpFixture({ id: 'partner' });
  const tg = await startTestTollgate((dir) =>
    testConfig(dir, {
      locations: [
        { name: 'hq', ips: ['127.0.0.0/26'], enforceAuthentication: true },
        { name: 'branch', ips: ['127.0.0.128/26'], enforceAuthentication: true },
      ],
      hosts: { 'www.site.test': '127.0.0.1' },
      idps: [lab.config({ domains: ['example.com'] }), partner.config({ default: false, domains: ['partner.test'], locations: ['branch'] })],
    }),
  );
  t.teardown(async () => {
    await tg.close();
    await Promise.all([lab.close(), partner.close(), origin.close()]);
  });
  const site = `http://www.site.test:${origin.port}/hello`;
  const atBranch = await new FlowClient(tg.proxyPort, '127.0.0.130').follow(site);
  t.ok(atBranch.url.startsWith(partner.idp.ssoUrl), 'the branch location goes straight to its IdP');
  const atHq = await new FlowClient(tg.proxyPort, '127.0.0.30').follow(site);
  t.equal(new URL(atHq.url).host, 'gateway.tollgate.test', 'HQ maps no IdP: the gateway asks');
  t.match(atHq.reply.body, /name="username"/);
  const carol = await new FlowClient(tg.proxyPort, '127.0.0.31').signIn(site, 'carol@partner.test', 'carol-pw');
  t.ok(carol.idpPage.url.startsWith(partner.idp.ssoUrl), 'at HQ, partner.test picks the partner IdP');
  t.equal(carol.reply.status, 200);
  const wrongDomain = await new FlowClient(tg.proxyPort, '127.0.0.131').signIn(site, 'alice@example.com', 'alice-pw');
  t.equal(wrongDomain.reply.status, 403, 'a non-default IdP vouching for a domain it does not serve is refused');
  t.match(wrongDomain.reply.body, /SAML_DOMAIN_NOT_MAPPED/);
});
