import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect, createServer, rootCertificates, TLSSocket, type TLSSocket as Tls } from 'node:tls';
import { join } from 'node:path';
import { checkCa, createCa, type CertificateAuthority } from '../../src/tls/ca.js';
import { leafHost, LeafMinter, MAX_LEAF_VALIDITY_DAYS, type LeafKeyType } from '../../src/tls/leaf.js';
import { openssl, x509Text } from '../helpers/openssl.js';

const day = 86_400_000;
const made = (keyType: 'rsa2048' | 'p256', validityDays?: number): { ca: CertificateAuthority; pem: string } => {
  const c = createCa({ keyType, ...(validityDays ? { validityDays } : {}) });
  return { ca: checkCa(c.certPem, c.keyPem), pem: c.certPem };
};
const rsaCa = made('rsa2048');
const ecCa = made('p256');

t.test('leaves chain to the CA and name exactly their host, as openssl checks', async (t) => {
  const dir = t.testdir();
  // [asked for, what the SAN says, openssl's check of the name]
  const hosts: [string, RegExp, string[]][] = [
    ['www.example.com', /X509v3 Subject Alternative Name: *\n\s+DNS:www\.example\.com\n/, ['-verify_hostname', 'www.example.com']],
    ['WWW.Example.COM.', /X509v3 Subject Alternative Name: *\n\s+DNS:www\.example\.com\n/, ['-verify_hostname', 'www.example.com']],
    ['10.1.2.3', /X509v3 Subject Alternative Name: *\n\s+IP Address:10\.1\.2\.3\n/, ['-verify_ip', '10.1.2.3']],
    ['[::1]', /X509v3 Subject Alternative Name: *\n\s+IP Address:0:0:0:0:0:0:0:1\n/, ['-verify_ip', '::1']],
    ['2001:db8::5', /X509v3 Subject Alternative Name: *\n\s+IP Address:2001:DB8:0:0:0:0:0:5\n/, ['-verify_ip', '2001:db8::5']],
    [`${'a'.repeat(63)}.example.com`, new RegExp(`DNS:${'a'.repeat(63)}\\.example\\.com\\n`), ['-verify_hostname', `${'a'.repeat(63)}.example.com`]],
  ];
  for (const [caName, { ca, pem }] of [['RSA CA', rsaCa], ['ECDSA CA', ecCa]] as const) {
    const caFile = join(dir, `${caName}.crt`);
    writeFileSync(caFile, pem);
    const caSki = /X509v3 Subject Key Identifier: *\n\s+(\S+)/.exec(x509Text(dir, pem))![1]!;
    for (const keyType of ['ecdsa-p256', 'rsa2048'] as LeafKeyType[]) {
      const minter = new LeafMinter({ ca, keyType });
      for (const [host, san, check] of hosts) {
        const label = `${caName}, ${keyType} leaf, ${host}`;
        const leaf = await minter.leaf(host);
        const file = join(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`);
        writeFileSync(file, leaf.certPem);
        t.match(openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, ...check, file]).out, `${file}: OK`, `${label}: verifies`);
        const text = x509Text(dir, leaf.certPem);
        t.match(text, san, `${label}: SAN`);
        t.match(text, /Alternative Name: *\n\s+[^,\n]+\n/, `${label}: one name only (names are comma-separated)`);
        t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/, `${label}: not a CA`);
        t.match(text, /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication\n/, `${label}: serverAuth`);
        t.match(text, keyType === 'rsa2048' ? /Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /Key Usage: critical\s+Digital Signature\n/, `${label}: key usage`);
        t.match(text, new RegExp(`Authority Key Identifier: *\\n\\s+(keyid:)?${caSki}\\n`), `${label}: authority key id is the CA's`);
        t.match(text, ca.keyDescription.startsWith('RSA') ? /Signature Algorithm: sha256WithRSAEncryption/ : /Signature Algorithm: ecdsa-with-SHA256/, `${label}: sha256`);
        const x = new X509Certificate(leaf.certDer);
        const lifetime = new Date(x.validTo).getTime() - new Date(x.validFrom).getTime();
        t.ok(lifetime <= 397 * day, `${label}: valid ${lifetime / day} days, within what browsers accept`);
        t.ok(new Date(x.validFrom).getTime() < Date.now() - 3600_000, `${label}: backdated for clock skew`);
        t.ok(x.checkIssued(ca.x509) && x.verify(ca.x509.publicKey), `${label}: Node agrees it is the CA's`);
      }
    }
  }
});

t.test('host names are normalised, and what is not a host gets no certificate', async (t) => {
  const ok: [string, string, boolean][] = [
    ['Example.COM', 'example.com', false],
    ['example.com.', 'example.com', false],
    ['[2001:DB8::1]', '2001:db8::1', true],
    ['127.0.0.1', '127.0.0.1', true],
    ['_sip._tcp.example.com', '_sip._tcp.example.com', false],
  ];
  for (const [raw, host, ip] of ok) t.same(leafHost(raw), { host, ip }, raw);
  const bad = ['', '.', 'a..b', '-x.example.com', 'x-.example.com', 'a b.com', 'foo/bar', 'é.example', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}com`, '*.example.com'];
  const minter = new LeafMinter({ ca: ecCa.ca });
  for (const raw of bad) {
    t.throws(() => leafHost(raw), { name: 'LeafError', code: 'LEAF_BAD_HOST' }, JSON.stringify(raw));
    await t.rejects(minter.leaf(raw), { code: 'LEAF_BAD_HOST' }, `${JSON.stringify(raw)}: minting refuses`);
  }
  t.equal(minter.stats.mints, 0);
});

t.test('concurrent first requests for one host mint one certificate', async (t) => {
  const minter = new LeafMinter({ ca: rsaCa.ca });
  const leaves = await Promise.all([...Array.from({ length: 25 }, () => minter.leaf('a.example.com')), minter.leaf('A.Example.com.'), ...Array.from({ length: 5 }, () => minter.leaf('b.example.com'))]);
  t.equal(minter.stats.mints, 2, 'one mint per host');
  t.equal(minter.stats.joined, 29, 'the others waited for it');
  t.equal(new Set(leaves.slice(0, 26)).size, 1, 'every request for a.example.com got the same leaf');
  t.equal(minter.cached('a.example.com'), leaves[0], 'and it is cached');
  await minter.leaf('a.example.com');
  t.equal(minter.stats.mints, 2, 'a later request is a cache hit');
});

t.test('a leaf leaves the cache before its certificate expires (injected clock)', async (t) => {
  let now = Date.now();
  const minter = new LeafMinter({ ca: ecCa.ca, validityDays: 10, now: () => now });
  const first = await minter.leaf('c.example.com');
  t.ok(first.renewAt < first.notAfter.getTime(), 'renewal is due before expiry');
  t.ok(first.renewAt > now + 8 * day, 'but not much before');
  now = first.renewAt - 1;
  t.equal(await minter.leaf('c.example.com'), first, 'still served just before renewal');
  now = first.renewAt;
  t.equal(minter.cached('c.example.com'), undefined, 'gone at renewal time');
  const second = await minter.leaf('c.example.com');
  t.not(second, first);
  t.equal(minter.stats.mints, 2);
  t.ok(second.notAfter.getTime() > first.notAfter.getTime(), 'a new certificate');
  t.ok(new X509Certificate(second.certDer).serialNumber !== new X509Certificate(first.certDer).serialNumber, 'with a new serial');
});

t.test('the cache is bounded, and a leaf never outlives its CA', async (t) => {
  const minter = new LeafMinter({ ca: ecCa.ca, cacheSize: 2 });
  for (const h of ['1.example.com', '2.example.com', '3.example.com']) await minter.leaf(h);
  t.equal(minter.size, 2);
  t.equal(minter.cached('1.example.com'), undefined, 'the least recently used went');
  const shortCa = made('p256', 5);
  const leaf = await new LeafMinter({ ca: shortCa.ca, validityDays: 30 }).leaf('d.example.com');
  t.equal(leaf.notAfter.getTime(), shortCa.ca.notAfter.getTime());
  t.throws(() => new LeafMinter({ ca: ecCa.ca, validityDays: MAX_LEAF_VALIDITY_DAYS + 1 }), RangeError);
});

/** handshake connects to a local TLS server; resolves with the error code, or 'ok' and the data read. */
function handshake(port: number, opts: { servername?: string; ca?: string | string[]; host?: string }): Promise<string> {
  return new Promise((resolve) => {
    const s: Tls = connect({ host: opts.host ?? '127.0.0.1', port, ...(opts.servername ? { servername: opts.servername } : {}), ...(opts.ca ? { ca: opts.ca } : {}) });
    let data = '';
    s.setTimeout(10_000, () => s.destroy(new Error('timeout')));
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('end', () => resolve(`ok:${data}`));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

t.test('a TLS server with a minted leaf is trusted by a client that trusts the CA, and by no other', async (t) => {
  for (const [caName, { ca, pem }] of [['RSA CA', rsaCa], ['ECDSA CA', ecCa]] as const) {
    const minter = new LeafMinter({ ca });
    const server = createServer({ SNICallback: minter.sniCallback }, (s) => s.end('hello'));
    server.on('tlsClientError', () => {}); // the untrusting client hangs up mid-handshake, as it should
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const port = (server.address() as AddressInfo).port;
    t.equal(await handshake(port, { servername: 'shop.example.com', ca: pem }), 'ok:hello', `${caName}: trusted with the CA given per request`);
    t.equal(await handshake(port, { servername: 'shop.example.com', ca: [...rootCertificates] }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', `${caName}: the public roots do not trust it`);
    t.equal(await handshake(port, { servername: 'shop.example.com', ca: made('p256').pem }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', `${caName}: another CA does not vouch for it`);
    t.equal(minter.stats.mints, 1, `${caName}: one leaf served all three`);
  }
});

t.test('an IP literal gets a leaf with its IP SAN (a terminator wraps the socket with the leaf\'s context)', async (t) => {
  const minter = new LeafMinter({ ca: ecCa.ca });
  const leaf = await minter.leaf('127.0.0.1');
  const server = createNetServer((sock) => {
    const tls = new TLSSocket(sock, { isServer: true, secureContext: leaf.context });
    tls.on('error', () => {});
    tls.on('secure', () => tls.end('by ip'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  t.equal(await handshake(port, { ca: ecCa.pem }), 'ok:by ip');
  const other = await minter.leaf('10.9.9.9');
  const wrong = createNetServer((sock) => {
    const tls = new TLSSocket(sock, { isServer: true, secureContext: other.context });
    tls.on('error', () => {});
  });
  wrong.listen(0, '127.0.0.1');
  await once(wrong, 'listening');
  t.teardown(() => wrong.close());
  t.equal(await handshake((wrong.address() as AddressInfo).port, { ca: ecCa.pem }), 'ERR_TLS_CERT_ALTNAME_INVALID', 'a leaf for another IP is refused');
});

t.test('an SNI name that is not a host fails that handshake only', async (t) => {
  const minter = new LeafMinter({ ca: ecCa.ca });
  const server = createServer({ SNICallback: minter.sniCallback }, (s) => s.end('fine'));
  const clientErrors: string[] = [];
  server.on('tlsClientError', (err: Error) => clientErrors.push(err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  t.not(await handshake(port, { servername: 'not a host!', ca: ecCa.pem }), 'ok:fine', 'the bad name gets no certificate');
  t.equal(clientErrors.length, 1, 'the server saw one failed handshake');
  t.equal(await handshake(port, { servername: 'good.example.com', ca: ecCa.pem }), 'ok:fine', 'and serves the next client');
  t.equal(minter.stats.mints, 1);
});
