/**
 * lab-transparent: Tollgate's transparent listeners in a routed lab built of network namespaces.
 *
 *   client ns --veth--> host: nat PREROUTING REDIRECT tcp 80 -> listeners.transparentHttp
 *                                                     tcp 443 -> listeners.transparentTls -> origin ns
 *
 * The client runs plain `curl http://<origin address>/` and `curl https://origin.lab.test/`, never told
 * about a proxy. Tollgate places it by its real address (the branch location), sends its first page
 * load to sign in, and passes its traffic once a browser on that address signed in (the IP surrogate).
 * The sign-in itself runs in the client namespace too, as a routed browser would (routed-signin.ts):
 * our own hosts on port 80, REDIRECTed like everything else; the lab IdP reached directly.
 */
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createLab, greSupport, type Lab } from '../helpers/netns.js';
import { startOrigin } from '../helpers/standin.js';
import { selfSigned } from '../helpers/tls.js';
import { BROWSER_UA, startLabIdpFixture } from '../helpers/flow.js';
import { startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';

const CLOUD = 'tollgate.test';
const ORIGIN_NAME = 'origin.lab.test';
const EXEMPT_NAME = 'exempt.lab.test';

const curl = (lab: Lab, ...args: string[]) => lab.run('client', ['curl', '-sS', '--max-time', '8', ...args]);

/** routedSignIn signs alice in from the client namespace, starting at `start`. */
async function routedSignIn(lab: Lab, idpPort: string, start: string): Promise<{ status?: number; url?: string; error?: string }> {
  const web = `${lab.originAddress}:80`; // any port-80 destination is REDIRECTed to Tollgate
  const routes: Record<string, string> = {
    [`gateway.${CLOUD}`]: web,
    [`login.${CLOUD}`]: web,
    [`ip.${CLOUD}`]: web,
    [lab.originAddress]: web,
    [lab.hostClientAddress]: `${lab.hostClientAddress}:${idpPort}`,
  };
  const script = fileURLToPath(new URL('../helpers/routed-signin.ts', import.meta.url));
  const r = await lab.run('client', [process.execPath, '--import', 'tsx', script, JSON.stringify({ start, from: lab.clientAddress, user: 'alice@example.com', password: 'alice-pw', routes })], 60_000);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as { status?: number; url?: string; error?: string };
  } catch {
    return { error: `${r.stdout} ${r.stderr}` };
  }
}

/** labWithTollgate builds a lab, its origin (HTTP and HTTPS), a lab IdP and a Tollgate listening on the client side. */
async function labWithTollgate(t: Test, gre: boolean): Promise<{ lab: Lab; tg: TestTollgate; ca: string; idpPort: string; exemptPort: number }> {
  const lab = await createLab({ gre });
  t.teardown(lab.close);
  const originTls = selfSigned([ORIGIN_NAME], []);
  const ca = join(t.testdir(), 'origin-ca.pem');
  writeFileSync(ca, originTls.cert);
  await startOrigin(lab, originTls);
  const idp = await startLabIdpFixture({ id: 'lab', host: lab.hostClientAddress });
  t.teardown(() => idp.close());
  // An exempt site of the host's own: what a request naming it must reach, whatever address it was sent to.
  const exempt = http.createServer((_req, res) => res.end('exempt site\n'));
  await new Promise<void>((r) => exempt.listen(0, '127.0.0.1', r));
  t.teardown(() => exempt.close());
  const exemptPort = (exempt.address() as AddressInfo).port;
  const tg = await startTestTollgate((dataDir) =>
    testConfig(dataDir, {
      listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0', transparentHttp: `${lab.hostClientAddress}:0`, transparentTls: `${lab.hostClientAddress}:0` },
      locations: [{ name: 'branch', ips: [`${lab.clientAddress}/32`], enforceAuthentication: true, surrogate: { enabled: true } }],
      hosts: { [ORIGIN_NAME]: lab.originAddress, [EXEMPT_NAME]: '127.0.0.1' },
      idps: [idp.config()],
      authentication: { exemptions: { hosts: [EXEMPT_NAME] } },
      transparent: { withoutSni: 'originalDestination' },
    }),
  );
  t.teardown(() => tg.close());
  await lab.redirect({ http: tg.transparentHttpPort, tls: tg.transparentTlsPort });
  return { lab, tg, ca, idpPort: new URL(idp.idp.ssoUrl).port, exemptPort };
}

/** routedTraffic is the whole check, run over the plain lab and over GRE. */
async function routedTraffic(t: Test, gre: boolean): Promise<void> {
  const { lab, tg, ca, idpPort, exemptPort } = await labWithTollgate(t, gre);
  const page = `http://${lab.originAddress}/`;

  // 1. A page load from the client network: sent to sign in.
  const first = await curl(lab, '-i', '-A', BROWSER_UA, '-H', 'Accept: text/html', page);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /^HTTP\/1\.1 307 /, 'redirected');
  t.match(first.stdout, new RegExp(`\\r\\nlocation: http://gateway\\.tollgate\\.test/login\\?r=`, 'i'), 'to the gateway');
  const redirected = await tg.waitForEntry((e) => e.status === 307 && e.clientIp === lab.clientAddress);
  t.match(redirected, { location: 'branch', forwardingMethod: 'transparent', host: lab.originAddress, action: 'auth-redirect' }, 'placed by its real address');

  // 1b. A forged Host naming an exempt site, sent to the origin's address: it goes to the site it names
  //     (the one the exemption was decided for), never to the origin without a sign-in.
  const forged = await curl(lab, '-H', `Host: ${EXEMPT_NAME}:${exemptPort}`, page);
  t.equal(forged.code, 0, forged.stderr);
  t.equal(forged.stdout, 'exempt site\n', 'answered by the exempt site, not by the origin');

  // 2. Before sign-in a TLS connection cannot be sent to a login page: it is closed.
  const tlsBefore = await curl(lab, '--cacert', ca, '--resolve', `${ORIGIN_NAME}:443:${lab.originAddress}`, `https://${ORIGIN_NAME}/`);
  t.not(tlsBefore.code, 0, 'no TLS before the sign-in');

  // 3. A browser on the client network signs in (through the transparent listener too).
  const signed = await routedSignIn(lab, idpPort, page);
  t.equal(signed.error, undefined, 'the routed sign-in ran');
  t.equal(signed.status, 200, 'and ended on the page');
  t.equal(signed.url, page);

  // 4. Now plain curl passes, identified by the IP surrogate, and reaches the origin namespace.
  const after = await curl(lab, page);
  t.equal(after.code, 0, after.stderr);
  t.equal(after.stdout, `origin ::ffff:${lab.originAddress}:80 host=${lab.originAddress} from=::ffff:${lab.hostOriginAddress}\n`, 'the origin answered Tollgate');
  const ok = await tg.waitForEntry((e) => e.status === 200 && e.clientIp === lab.clientAddress && e.protocol === 'HTTP' && e.login !== '');
  t.match(ok, { login: 'alice@example.com', forwardingMethod: 'transparent', location: 'branch' });

  // 5. HTTPS by SNI, spliced to the origin namespace's TLS server with its own certificate.
  const tls = await curl(lab, '--cacert', ca, '--resolve', `${ORIGIN_NAME}:443:${lab.originAddress}`, `https://${ORIGIN_NAME}/`);
  t.equal(tls.code, 0, tls.stderr);
  t.equal(tls.stdout, `origin ::ffff:${lab.originAddress}:443 host=${ORIGIN_NAME} from=::ffff:${lab.hostOriginAddress}\n`, 'spliced by SNI');
  const spliced = await tg.waitForEntry((e) => e.sni === ORIGIN_NAME && e.action === 'allowed');
  t.match(spliced, { login: 'alice@example.com', forwardingMethod: 'transparent', protocol: 'SSL', decrypted: false, url: `${ORIGIN_NAME}:443` });

  // 6. No SNI (an address in the URL): tunnelled to the original destination, as configured.
  // -k: the origin's certificate names origin.lab.test; this checks only where the connection went.
  const bare = await curl(lab, '-k', `https://${lab.originAddress}/`);
  t.equal(bare.code, 0, bare.stderr);
  t.match(bare.stdout, /^origin .*:443 /, 'reached the original destination');
  t.match(await tg.waitForEntry((e) => e.sni === '' && e.url === `${lab.originAddress}:443`), { action: 'allowed', forwardingMethod: 'transparent' });
}

t.test('routed traffic: REDIRECTed to the transparent listeners, sign-in, then HTTP and TLS by SNI', async (t) => {
  await routedTraffic(t, false);
});

const gre = await greSupport();
const greSkip = gre.ok ? false : `this kernel cannot make GRE tunnels (${gre.reason}), so the GRE case is not tested here`;
t.test('the same through a GRE tunnel from the client network', { skip: greSkip }, async (t) => {
  await routedTraffic(t, true);
});
