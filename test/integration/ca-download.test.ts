import t from 'tap';
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { createCa, writeCa } from '../../src/tls/ca.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

/** fetch sends one GET (or HEAD) to host:port with the given request target and Host, and buffers the raw body. */
function fetch(port: number, path: string, host: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the CA certificate is served at /ca.crt (DER) and /ca.pem, on ip.<cloud> through the proxy and on the control listener', async (t) => {
  const dir = t.testdir();
  const ca = createCa({ keyType: 'p256' });
  await writeCa({ cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, ca.certPem, ca.keyPem);
  const der = new X509Certificate(ca.certPem).raw;
  const tg = await startTestTollgate((data) => testConfig(data, { inspection: { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key') } }));
  t.teardown(() => tg.close());
  const doors: [string, number, string, string][] = [
    ['through the proxy', tg.proxyPort, 'http://ip.tollgate.test', 'ip.tollgate.test'],
    ['on the control listener', tg.controlPort, '', `127.0.0.1:${tg.controlPort}`],
  ];
  for (const [door, port, prefix, host] of doors) {
    const crt = await fetch(port, `${prefix}/ca.crt`, host);
    t.equal(crt.status, 200, `${door}: /ca.crt`);
    t.equal(crt.headers['content-type'], 'application/x-x509-ca-cert', `${door}: the type that opens an install dialog`);
    t.ok(crt.body.equals(der), `${door}: the DER certificate`);
    const pem = await fetch(port, `${prefix}/ca.pem`, host);
    t.equal(pem.status, 200);
    t.equal(pem.headers['content-type'], 'application/x-pem-file');
    t.equal(pem.body.toString('utf8'), new X509Certificate(ca.certPem).toString(), `${door}: the PEM certificate`);
    const head = await fetch(port, `${prefix}/ca.crt`, host, 'HEAD');
    t.equal(head.status, 200);
    t.equal(head.headers['content-length'], String(der.length));
    t.equal(head.body.length, 0);
    t.equal((await fetch(port, `${prefix}/ca.key`, host)).status, 404, `${door}: the key is never served`);
  }
  // The status page offers the certificate to install, with its fingerprint.
  const status = JSON.parse((await fetch(tg.proxyPort, 'http://ip.tollgate.test/?format=json', 'ip.tollgate.test')).body.toString('utf8')) as { caCertificate: { sha256: string; derUrl: string } | null };
  t.equal(status.caCertificate?.sha256, new X509Certificate(ca.certPem).fingerprint256, 'the status page names the CA by its SHA-256 fingerprint');
  t.match(status.caCertificate?.derUrl, /\/ca\.crt$/);
  const page = (await fetch(tg.proxyPort, 'http://ip.tollgate.test/', 'ip.tollgate.test')).body.toString('utf8');
  t.match(page, /href="[^"]*\/ca\.crt"/, 'the HTML page links to /ca.crt');
});

t.test('without a CA, /ca.crt is a clear 404', async (t) => {
  const dir = t.testdir();
  const tg = await startTestTollgate((data) => testConfig(data, { inspection: { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key') } }));
  t.teardown(() => tg.close());
  const r = await fetch(tg.controlPort, '/ca.crt', `127.0.0.1:${tg.controlPort}`);
  t.equal(r.status, 404);
  t.equal(r.headers['x-tollgate-error'], 'no_ca');
  const p = await fetch(tg.proxyPort, 'http://ip.tollgate.test/ca.pem', 'ip.tollgate.test');
  t.equal(p.status, 404);
  t.equal(p.headers['x-tollgate-error'], 'no_ca');
});
