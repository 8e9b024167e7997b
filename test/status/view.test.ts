import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Transaction } from '../../src/proxy/pipeline.js';
import { buildRuntime, type Runtime } from '../../src/runtime.js';
import type { SessionRecord } from '../../src/sessions/session.js';
import { buildStatusView, pacUrls, type StatusInput } from '../../src/status/view.js';

const rt = buildRuntime(
  validateConfig({
    nodeName: 'node-1',
    locations: [
      { name: 'office', ips: ['10.0.0.0/24'], enforceAuthentication: true, trustedForwarders: ['10.0.0.9'], sublocations: [{ name: 'guest', ips: ['10.0.0.128/25'] }] },
      { name: 'open', ips: ['10.1.0.0/24'] },
    ],
    authentication: { exemptions: { hosts: ['ip.tollgate.test'] } },
  } satisfies ConfigInput),
  3,
);
const roaming = buildRuntime(validateConfig({ unknownSources: 'authenticate', locations: [] } satisfies ConfigInput), 1);

const SESSION: SessionRecord = {
  id: 'sess-1',
  userId: 'u1',
  loginName: 'alice@example.com',
  displayName: 'Alice',
  department: 'Eng',
  groups: ['A'],
  idp: 'okta',
  location: 'office',
  clientIp: '10.0.0.5',
  authMethod: 'saml',
  createdAt: Date.parse('2026-01-01T10:00:00Z'),
  expiresAt: Date.parse('2026-01-02T10:00:00Z'),
};

function tx(r: Runtime, clientIp: string, opts: { peerIp?: string; host?: string; originForm?: boolean; session?: boolean } = {}): Transaction {
  return {
    rt: r,
    startMs: 0,
    protocol: 'HTTP',
    peerIp: opts.peerIp ?? clientIp,
    clientIp,
    match: r.locator.lookup(clientIp),
    method: 'GET',
    url: `http://${opts.host ?? 'ip.tollgate.test'}/`,
    host: opts.host ?? 'ip.tollgate.test',
    port: 80,
    login: '',
    department: '',
    action: 'own-host',
    reason: '',
    identity: opts.session ? { session: SESSION, by: 'surrogate' } : null,
    ...(opts.originForm ? { originForm: true } : {}),
  };
}

function view(over: Partial<StatusInput> & Pick<StatusInput, 'tx'>) {
  return buildStatusView({ rt, peerIp: over.tx?.peerIp ?? '127.0.0.1', xff: undefined, localAddress: '127.0.0.1', proxyListener: { address: '127.0.0.1', port: 9400 }, ca: null, worker: null, now: SESSION.createdAt + 90_000, ...over });
}

t.test('door, address, location and identity, as the page states them', async (t) => {
  const table: [name: string, input: Parameters<typeof view>[0], want: Record<string, unknown>][] = [
    ['anonymous at a location that enforces sign-in', { tx: tx(rt, '10.0.0.5', { host: 'bare.tollgate.test' }) }, { viaProxy: true, reachedBy: 'proxy', location: 'office', sublocation: null, enforceAuthentication: true, identifiedBy: 'none', exemptBecause: null, authenticated: false }],
    ['a sublocation', { tx: tx(rt, '10.0.0.200', { host: 'bare.tollgate.test' }) }, { location: 'office', sublocation: 'guest' }],
    ['exempt: the location does not enforce sign-in', { tx: tx(rt, '10.1.0.5') }, { identifiedBy: 'exempt', exemptBecause: 'location', enforceAuthentication: false }],
    ['exempt: the status host is on the exemption list', { tx: tx(rt, '10.0.0.5') }, { identifiedBy: 'exempt', exemptBecause: 'exemption', enforceAuthentication: true }],
    ['signed in: the session wins over exemptions', { tx: tx(rt, '10.1.0.5', { session: true }) }, { authenticated: true, identifiedBy: 'surrogate', exemptBecause: null, logoutCsrf: /^.{16,}$/ }],
    ['a trusted forwarder placed the client', { tx: tx(rt, '10.0.0.5', { peerIp: '10.0.0.9', host: 'bare.tollgate.test' }) }, { clientIp: '10.0.0.5', clientIpSource: 'x-forwarded-for', peerIp: '10.0.0.9' }],
    ['no location, with unknownSources: authenticate', { rt: roaming, tx: tx(roaming, '192.0.2.7') }, { location: null, enforceAuthentication: true, identifiedBy: 'none' }],
    ['origin form on the proxy port: direct, and no identity even with a session', { tx: tx(rt, '10.0.0.5', { originForm: true, session: true }) }, { viaProxy: false, reachedBy: 'proxy-listener-direct', authenticated: false, identifiedBy: 'none', user: null, logoutCsrf: null, exemptBecause: null }],
    ['the control listener: direct', { tx: null, peerIp: '10.0.0.5' }, { viaProxy: false, reachedBy: 'control-listener', clientIp: '10.0.0.5', location: 'office', identifiedBy: 'none' }],
    ['the control listener believes a trusted forwarder too', { tx: null, peerIp: '10.0.0.9', xff: '10.1.0.3' }, { clientIp: '10.1.0.3', clientIpSource: 'x-forwarded-for', location: 'open' }],
    ['the control listener ignores anyone else\'s X-Forwarded-For', { tx: null, peerIp: '10.0.0.5', xff: '10.1.0.3' }, { clientIp: '10.0.0.5', clientIpSource: 'peer' }],
  ];
  for (const [name, input, want] of table) t.match(view(input), want, name);
});

t.test('the signed-in user: names, IdP, session start, expiry and age', async (t) => {
  const v = view({ tx: tx(rt, '10.0.0.5', { session: true }) });
  t.same(v.user, { loginName: 'alice@example.com', displayName: 'Alice', department: 'Eng', groups: ['A'], idp: 'okta', idpId: 'okta', signedInAt: '2026-01-01T10:00:00.000Z', expiresAt: '2026-01-02T10:00:00.000Z', ageSeconds: 90 });
  t.equal(v.configVersion, 3);
  t.equal(v.node, 'node-1');
});

t.test('the CA section appears only with a CA, with download URLs on ip.<cloud>', async (t) => {
  t.equal(view({ tx: null }).caCertificate, null);
  t.same(view({ tx: null, ca: { subject: 'CN=Lab CA', sha256: 'AB:CD' } }).caCertificate, { derUrl: 'http://ip.tollgate.test/ca.crt', pemUrl: 'http://ip.tollgate.test/ca.pem', subject: 'CN=Lab CA', sha256: 'AB:CD' });
});

t.test('PAC URLs name the proxy listener (or, on a wildcard, the address reached), then pac.<cloud>', async (t) => {
  const table: [proxy: { address: string; port: number } | null, local: string, want: string[]][] = [
    [{ address: '127.0.0.1', port: 9400 }, '127.0.0.1', ['http://127.0.0.1:9400/proxy.pac', 'http://pac.tollgate.test/proxy.pac']],
    [{ address: '0.0.0.0', port: 8080 }, '::ffff:192.0.2.10', ['http://192.0.2.10:8080/proxy.pac', 'http://pac.tollgate.test/proxy.pac']],
    [{ address: '::', port: 8080 }, '2001:db8::1', ['http://[2001:db8::1]:8080/proxy.pac', 'http://pac.tollgate.test/proxy.pac']],
    [{ address: '::1', port: 3128 }, '::1', ['http://[::1]:3128/proxy.pac', 'http://pac.tollgate.test/proxy.pac']],
    [null, '127.0.0.1', ['http://pac.tollgate.test/proxy.pac']],
  ];
  for (const [proxy, local, want] of table) t.same(pacUrls(rt, proxy, local), want, `${JSON.stringify(proxy)} via ${local}`);
});
