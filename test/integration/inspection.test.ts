/**
 * TLS inspection end to end: CONNECT through a real Tollgate, TLS with a leaf from its CA (trusted
 * per connection), decrypted requests through the pipeline, verified TLS to real https origins.
 */
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { createCa, writeCa } from '../../src/tls/ca.js';
import { startTestTollgate, testConfig, connectVia, rawExchange, type TestTollgate } from '../helpers/tollgate.js';
import { curlVia, httpsVia, InspectingAgent, originCa, startHttpsOrigin, tunnelTls, type HttpsOrigin } from '../helpers/inspect.js';

const DAY = 86_400_000;

interface Lab {
  readonly tg: TestTollgate;
  readonly caPem: string;
  readonly origins: Record<'good' | 'expired' | 'wrongname' | 'unknown' | 'plain', HttpsOrigin>;
  readonly originCaPem: string;
}

/** lab starts https origins (one per failure kind) and a Tollgate inspecting the lab location. */
async function lab(t: typeof import("tap").Test.prototype, extra: Record<string, unknown> = {}): Promise<Lab> {
  const dir = t.testdir();
  const ours = createCa({ keyType: 'p256', commonName: 'Tollgate test CA' });
  await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, ours.certPem, ours.keyPem);
  const oca = await originCa('Lab origin CA');
  const stranger = await originCa('Stranger CA');
  writeFileSync(join(dir, 'origin-ca.pem'), oca.certPem);
  const origins = {
    good: await startHttpsOrigin(await oca.leaf('good.lab.test'), 'good'),
    expired: await startHttpsOrigin(await oca.leaf('expired.lab.test', Date.now() - 90 * DAY), 'expired'),
    wrongname: await startHttpsOrigin(await oca.leaf('someone-else.lab.test'), 'wrongname'),
    unknown: await startHttpsOrigin(await stranger.leaf('unknown.lab.test'), 'unknown'),
    plain: await startHttpsOrigin(await oca.leaf('pinned.lab.test'), 'pinned'),
  };
  t.teardown(() => Promise.all(Object.values(origins).map((o) => o.close())));
  const hosts: Record<string, string> = {};
  for (const n of ['good', 'expired', 'wrongname', 'unknown', 'pinned']) hosts[`${n}.lab.test`] = '127.0.0.1';
  const tg = await startTestTollgate((dataDir) => {
    const base = testConfig(dataDir);
    return {
      ...base,
      locations: base.locations!.map((l) => ({ ...l, inspection: 'on' as const })),
      hosts,
      connectPorts: Object.values(origins).map((o) => o.port),
      inspection: {
        caCert: join(dir, 'ca.crt'),
        caKey: join(dir, 'ca.key'),
        doNotInspect: ['pinned.lab.test'],
        hosts: [{ match: ['*.lab.test'], upstreamCa: join(dir, 'origin-ca.pem') }],
      },
      ...extra,
    };
  });
  t.teardown(() => tg.close());
  return { tg, caPem: ours.certPem, origins, originCaPem: oca.certPem };
}

const url = (o: HttpsOrigin, name: string, path = '/') => `https://${name}.lab.test:${o.port}${path}`;

t.test('an inspected https request: our leaf to the client, verified TLS to the origin, one pipeline', async (t) => {
  const { tg, caPem, origins } = await lab(t);
  const agent = new InspectingAgent(tg.proxyPort, caPem, undefined, true);
  t.teardown(() => agent.destroy());

  const r = await httpsVia(agent, url(origins.good, 'good', '/hello?x=1'), { headers: { 'user-agent': 'curl/8' } });
  t.equal(r.status, 200, r.body);
  t.equal(JSON.parse(r.body).label, 'good', 'the answer came from the origin');
  t.equal(JSON.parse(r.body).url, '/hello?x=1');
  const seen = origins.good.seen.at(-1)!;
  t.equal(seen.servername, 'good.lab.test', 'SNI upstream');
  t.equal(seen.alpn, 'http/1.1', 'ALPN http/1.1 upstream');
  t.equal(seen.headers.host, `good.lab.test:${origins.good.port}`);
  t.match(String(seen.headers.via), /tollgate/i);

  // Keep-alive inside the inspected connection: more requests, one tunnel, each logged.
  for (const p of ['/two', '/three']) t.equal((await httpsVia(agent, url(origins.good, 'good', p))).status, 200);
  await tg.waitForEntry((e) => e.url.endsWith('/three'));
  const decrypted = tg.entries().filter((e) => e.decrypted === true);
  t.same(
    decrypted.map((e) => [e.url, e.protocol, e.sni, e.status, e.method]),
    [
      [url(origins.good, 'good', '/hello?x=1'), 'SSL', 'good.lab.test', 200, 'GET'],
      [url(origins.good, 'good', '/two'), 'SSL', 'good.lab.test', 200, 'GET'],
      [url(origins.good, 'good', '/three'), 'SSL', 'good.lab.test', 200, 'GET'],
    ],
  );
  t.equal(decrypted[0]!.forwardingMethod, 'explicit');
  t.equal(tg.entries().filter((e) => e.protocol === 'TUNNEL').length, 0, 'the tunnel line is written when the connection ends');
  agent.destroy();
  const tunnel = await tg.waitForEntry((e) => e.protocol === 'TUNNEL');
  t.equal(tunnel.reason, 'inspected_location');
  t.equal(tunnel.status, 200);

  // The client saw our certificate, not the origin's.
  const s = await tunnelTls(tg.proxyPort, `good.lab.test:${origins.good.port}`, { ca: caPem });
  const peer = s.getPeerCertificate();
  t.equal(peer.issuer.CN, 'Tollgate test CA');
  t.match(peer.subjectaltname, 'DNS:good.lab.test');
  s.destroy();
});

t.test('upstream certificate failures become block pages naming the reason', async (t) => {
  const { tg, caPem, origins } = await lab(t);
  const cases: [keyof Lab['origins'], string, string, RegExp][] = [
    ['expired', 'expired', 'upstream_cert_expired', /has expired/],
    ['wrongname', 'wrongname', 'upstream_cert_wrong_name', /for another name/],
    ['unknown', 'unknown', 'upstream_cert_unknown_issuer', /not issued by a trusted authority/],
  ];
  for (const [key, name, code, reason] of cases) {
    const agent = new InspectingAgent(tg.proxyPort, caPem);
    const r = await httpsVia(agent, url(origins[key], name), { headers: { accept: 'text/html' } });
    agent.destroy();
    t.equal(r.status, 502, `${name}: 502`);
    t.equal(r.headers['x-tollgate-error'], code, `${name}: ${code}`);
    t.match(r.body, reason, `${name}: the page says why`);
    t.match(r.body, /<html/);
    t.equal(origins[key].seen.length, 0, `${name}: nothing reached the origin`);
    const e = await tg.waitForEntry((x) => x.reason === code);
    t.equal(e.action, 'error');
    t.equal(e.decrypted, true);
  }
});

t.test('do-not-inspect and exempt hosts stay plain tunnels', async (t) => {
  const { tg, caPem, origins, originCaPem } = await lab(t, {
    authentication: { exemptions: { hosts: ['good.lab.test'] } },
  });
  for (const [name, o] of [['pinned', origins.plain], ['good', origins.good]] as const) {
    // Trusting only the origin's CA: the handshake is with the origin itself.
    const s = await tunnelTls(tg.proxyPort, `${name}.lab.test:${o.port}`, { ca: originCaPem });
    t.equal(s.getPeerCertificate().issuer.CN, 'Lab origin CA', `${name}: the origin's own certificate`);
    s.destroy();
    await t.rejects(tunnelTls(tg.proxyPort, `${name}.lab.test:${o.port}`, { ca: caPem }), /self-signed|unable to verify|unable to get/i, `${name}: our CA is not involved`);
  }
  const reasons = tg.entries().filter((e) => e.protocol === 'TUNNEL').map((e) => e.reason);
  t.notOk(reasons.some((r) => r.startsWith('inspected')), 'no tunnel was inspected');
});

t.test('a client without our CA fails the handshake cleanly, logged once per client and host, counted', async (t) => {
  const { tg, caPem, origins } = await lab(t);
  const other = join(t.testdir(), 'other.pem');
  writeFileSync(other, createCa({ keyType: 'p256', commonName: 'Not Tollgate' }).certPem);
  for (let i = 0; i < 3; i++) {
    // curl checks the certificate inside the handshake, as browsers do, and says so with an alert.
    const r = await curlVia(tg.proxyPort, ['--cacert', other, url(origins.good, 'good')]);
    t.equal(r.exit, 60, `curl: certificate problem (${r.stderr.trim()})`);
  }
  await new Promise((r) => setTimeout(r, 300));
  const lines = tg.app.lines.filter((l) => l.msg === 'inspection: client rejected certificate');
  t.equal(lines.length, 1, 'logged once');
  t.equal(lines[0]!.host, 'good.lab.test');
  t.equal(lines[0]!.clientIp, '127.0.0.1');
  const metrics = await (await fetch(`http://127.0.0.1:${tg.controlPort}/metrics`, { headers: tg.admin })).text();
  t.match(metrics, /tollgate_inspection_client_rejected_total 3\b/);
  // The proxy is fine afterwards.
  const agent = new InspectingAgent(tg.proxyPort, caPem);
  t.equal((await httpsVia(agent, url(origins.good, 'good'))).status, 200);
  agent.destroy();
});

t.test('not HTTP inside TLS, not TLS at all, a mismatched SNI: closed with a log line', async (t) => {
  const { tg, caPem, origins } = await lab(t);
  const authority = `good.lab.test:${origins.good.port}`;
  // TLS, then something that is not HTTP/1.x.
  const s = await tunnelTls(tg.proxyPort, authority, { ca: caPem });
  const closed = new Promise<string>((resolve) => {
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('close', () => resolve(got));
  });
  s.write('\x00\x01\x02 hello, not http\r\n\r\n');
  t.equal(await closed, '', 'closed without an answer');
  // Not TLS after the CONNECT.
  const raw = await rawExchange(tg.proxyPort, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.match(raw, /^HTTP\/1\.1 200 /);
  t.notMatch(raw.slice(raw.indexOf('\r\n\r\n') + 4), /HTTP/, 'nothing after the 200');
  // SNI for another host than the CONNECT.
  await t.rejects(tunnelTls(tg.proxyPort, authority, { ca: caPem, servername: 'other.example' }));
  await new Promise((r) => setTimeout(r, 200));
  const msgs = tg.app.lines.map((l) => `${String(l.msg)} ${String(l.reason ?? '')}`);
  t.ok(msgs.some((m) => m.startsWith('inspection: not HTTP inside TLS')), 'not HTTP logged');
  t.ok(msgs.some((m) => m.startsWith('inspection: not TLS, closed')), 'not TLS logged');
  t.ok(msgs.some((m) => m.includes('sni_mismatch')), 'SNI mismatch logged');
  await tg.waitForEntry((e) => e.reason === 'not_tls');
  await tg.waitForEntry((e) => e.reason === 'sni_mismatch');
});

t.test('inspection.nonTls: tunnel passes non-TLS bytes on an inspected tunnel as a plain tunnel', async (t) => {
  const echo = net.createServer((c) => c.on('data', (d) => c.write(d)));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.teardown(() => echo.close());
  const port = (echo.address() as net.AddressInfo).port;
  const dir = t.testdir();
  const ours = createCa({ keyType: 'p256' });
  await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, ours.certPem, ours.keyPem);
  const tg = await startTestTollgate((dataDir) => {
    const base = testConfig(dataDir);
    return {
      ...base,
      locations: base.locations!.map((l) => ({ ...l, inspection: 'on' as const })),
      hosts: { 'echo.lab.test': '127.0.0.1' },
      connectPorts: [port],
      inspection: { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), nonTls: 'tunnel' },
    };
  });
  t.teardown(() => tg.close());
  const c = await connectVia(tg.proxyPort, `echo.lab.test:${port}`);
  t.equal(c.status, 200);
  c.socket.write('PING plain\n');
  const got = await new Promise<string>((resolve) => c.socket.once('data', (d: Buffer) => resolve(d.toString())));
  t.equal(got, 'PING plain\n');
  c.socket.destroy();
  const e = await tg.waitForEntry((x) => x.protocol === 'TUNNEL');
  t.equal(e.reason, 'not_tls_tunneled');
});

t.test("own hosts inside TLS are answered by Tollgate with its own leaf", async (t) => {
  const { tg, caPem } = await lab(t);
  const agent = new InspectingAgent(tg.proxyPort, caPem);
  t.teardown(() => agent.destroy());
  const r = await httpsVia(agent, 'https://ip.tollgate.test/?format=json');
  t.equal(r.status, 200);
  t.match(JSON.parse(r.body), { clientIp: '127.0.0.1' });
  const ca = await httpsVia(agent, 'https://ip.tollgate.test/ca.pem');
  t.equal(ca.body.trim(), caPem.trim(), 'the CA is downloadable over https too');
  const s = await tunnelTls(tg.proxyPort, 'gateway.tollgate.test:443', { ca: caPem });
  const peer = s.getPeerCertificate();
  s.destroy();
  t.equal(peer.subject.CN, 'gateway.tollgate.test');
  t.equal(tls.checkServerIdentity('gateway.tollgate.test', peer), undefined, 'the leaf names the gateway');
});

t.test('a WebSocket inside an inspected tunnel goes on as wss, verified, and is logged as decrypted', async (t) => {
  const { tg, caPem, origins } = await lab(t);
  const authority = `good.lab.test:${origins.good.port}`;
  const tunnel = await tunnelTls(tg.proxyPort, authority, { ca: caPem });
  const ws = new WebSocket(`wss://${authority}/ws`, { createConnection: () => tunnel });
  t.teardown(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
  ws.send('inside TLS');
  t.equal(await echoed, 'echo:inside TLS', "the origin's echo");
  const seen = origins.good.seen.find((s) => s.url === '/ws')!;
  t.equal(seen.servername, 'good.lab.test', 'upstream TLS with SNI: the origin is a wss server');
  t.match(String(seen.headers.via), /tollgate/i);
  ws.close();
  const e = await tg.waitForEntry((x) => x.protocol === 'SSL' && x.method === 'GET' && x.url.endsWith('/ws'));
  t.match(e, { status: 101, decrypted: true, sni: 'good.lab.test' });
});
