import t from 'tap';
import dgram from 'node:dgram';
import dns from 'node:dns';
import type { AddressInfo } from 'node:net';
import { DnsCache } from '../../src/proxy/dnscache.js';

/**
 * A DNS server on 127.0.0.1 (RFC 1035 wire format, A records only): each name maps to an address
 * and a TTL that the test can change; AAAA questions get an empty answer (NODATA), unknown names
 * NXDOMAIN. It counts the A questions it was asked per name.
 */
async function dnsServer(zone: Map<string, { address: string; ttl: number }>) {
  const asked = new Map<string, number>();
  const sock = dgram.createSocket('udp4');
  sock.on('message', (q, peer) => {
    // Question: after the 12-byte header, labels until a zero byte, then type and class.
    let i = 12;
    const labels: string[] = [];
    while (q[i] !== 0) {
      labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString('latin1'));
      i += q[i]! + 1;
    }
    const qEnd = i + 5;
    const type = q.readUInt16BE(i + 1);
    const name = labels.join('.').toLowerCase();
    const rec = zone.get(name);
    if (type === 1) asked.set(name, (asked.get(name) ?? 0) + 1);
    const answer = rec !== undefined && type === 1;
    const head = Buffer.alloc(12);
    q.copy(head, 0, 0, 2); // id
    head.writeUInt16BE(rec === undefined ? 0x8183 : 0x8180, 2); // response, recursion available; NXDOMAIN when unknown
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answer ? 1 : 0, 6);
    const parts = [head, q.subarray(12, qEnd)];
    if (answer) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(rec.ttl, 6);
      rr.writeUInt16BE(4, 10);
      rec.address.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
      parts.push(rr);
    }
    sock.send(Buffer.concat(parts), peer.port, peer.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const resolver = new dns.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${(sock.address() as AddressInfo).port}`]);
  return { asked, resolver, close: () => sock.close() };
}

function resolveWith(cache: DnsCache, name: string): Promise<{ err: string | null; addresses: readonly string[] }> {
  return new Promise((r) => cache.resolve(name, (err, addresses) => r({ err: err?.code ?? null, addresses })));
}

t.test('answers are kept for their TTL, then asked again; concurrent asks share one query', async (t) => {
  const zone = new Map([
    ['svc.example.test', { address: '192.0.2.10', ttl: 30 }],
    ['zero.example.test', { address: '192.0.2.20', ttl: 0 }],
    ['long.example.test', { address: '192.0.2.30', ttl: 86_400 }],
  ]);
  const server = await dnsServer(zone);
  t.teardown(() => server.close());
  let now = 1_000_000;
  const fallbacks: string[] = [];
  const cache = new DnsCache({
    resolver: server.resolver,
    now: () => now,
    maxTtlMs: 300_000,
    lookup: (name, cb) => {
      fallbacks.push(name);
      cb(name === 'hosts-file.test' ? null : Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), name === 'hosts-file.test' ? ['192.0.2.99'] : []);
    },
  });

  const [a, b] = await Promise.all([resolveWith(cache, 'svc.example.test'), resolveWith(cache, 'SVC.example.test')]);
  t.same(a, { err: null, addresses: ['192.0.2.10'] });
  t.same(b, a, 'the same name in another case is the same name');
  t.equal(server.asked.get('svc.example.test'), 1, 'two concurrent asks, one query');

  zone.set('svc.example.test', { address: '192.0.2.11', ttl: 30 });
  now += 29_000;
  t.same((await resolveWith(cache, 'svc.example.test')).addresses, ['192.0.2.10'], 'within the TTL: from the cache');
  t.equal(server.asked.get('svc.example.test'), 1);
  now += 2_000;
  t.same((await resolveWith(cache, 'svc.example.test')).addresses, ['192.0.2.11'], 'past the TTL: asked again, new answer');
  t.equal(server.asked.get('svc.example.test'), 2);

  await resolveWith(cache, 'zero.example.test');
  await resolveWith(cache, 'zero.example.test');
  t.equal(server.asked.get('zero.example.test'), 2, 'a TTL of 0 is not cached');

  await resolveWith(cache, 'long.example.test');
  now += 300_001;
  await resolveWith(cache, 'long.example.test');
  t.equal(server.asked.get('long.example.test'), 2, 'a long TTL is capped at maxTtlMs');

  // Not in DNS: the system's resolver (hosts file) answers, and a name known nowhere fails, uncached.
  t.same(await resolveWith(cache, 'hosts-file.test'), { err: null, addresses: ['192.0.2.99'] });
  t.same(await resolveWith(cache, 'nowhere.test'), { err: 'ENOTFOUND', addresses: [] });
  t.same(await resolveWith(cache, 'nowhere.test'), { err: 'ENOTFOUND', addresses: [] });
  t.same(fallbacks, ['hosts-file.test', 'nowhere.test', 'nowhere.test'], 'failures are asked again, not cached');
});

t.test('the cache is bounded: the least recently used name goes first', async (t) => {
  const zone = new Map([
    ['a.example.test', { address: '192.0.2.1', ttl: 60 }],
    ['b.example.test', { address: '192.0.2.2', ttl: 60 }],
    ['c.example.test', { address: '192.0.2.3', ttl: 60 }],
  ]);
  const server = await dnsServer(zone);
  t.teardown(() => server.close());
  const cache = new DnsCache({ resolver: server.resolver, maxEntries: 2 });
  await resolveWith(cache, 'a.example.test');
  await resolveWith(cache, 'b.example.test');
  await resolveWith(cache, 'a.example.test'); // a is now the most recent
  await resolveWith(cache, 'c.example.test'); // evicts b
  t.equal(cache.size, 2);
  await resolveWith(cache, 'a.example.test');
  await resolveWith(cache, 'b.example.test');
  t.equal(server.asked.get('a.example.test'), 1, 'a stayed');
  t.equal(server.asked.get('b.example.test'), 2, 'b was evicted and asked again');
});
