/**
 * A sign-in that is half done when a new config is activated still finishes: the AuthnRequest, the
 * original URL and the one-time state live in the store, not in the runtime that is swapped out.
 */
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

const origin = await startOrigin();
const lab = await startLabIdpFixture({ id: 'lab' });
const tg = await startTestTollgate((d) =>
  testConfig(d, {
    locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true, surrogate: { enabled: true } }],
    hosts: { 'www.origin-a.test': '127.0.0.1' },
    idps: [lab.config()],
  }),
);
t.teardown(async () => {
  await tg.close();
  await lab.close();
  await origin.close();
});

t.test('a sign-in started before an activation finishes after it', async (t) => {
  const site = `http://www.origin-a.test:${origin.port}/hello`;
  const alice = new FlowClient(tg.proxyPort, '127.0.0.20');
  const before = tg.tg.runtime.current.version;
  const got = await alice.obtainResponse(site, 'alice@example.com', 'alice-pw');
  const r = await tg.tg.activate();
  t.ok(r.ok, 'activated');
  t.ok(tg.tg.runtime.current.version > before, `the runtime was swapped (v${before} -> v${tg.tg.runtime.current.version})`);
  const done = await alice.follow(got.acsUrl, { form: { SAMLResponse: got.samlResponse, RelayState: got.relayState } });
  t.equal(done.reply.status, 200, 'the sign-in finished on the new runtime');
  t.equal(done.url, site, 'and landed on the page first asked for');
  t.equal((await alice.request(site)).status, 200, 'the user is known on the new runtime');
});
