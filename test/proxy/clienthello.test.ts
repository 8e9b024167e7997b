import t from 'tap';
import { DEFAULT_MAX_CLIENT_HELLO_BYTES, hostName, peekClientHello } from '../../src/proxy/clienthello.js';
import {
  captureCorpus,
  decode,
  encode,
  expected,
  fuzz,
  NodeOracle,
  peekAll,
  record,
  show,
  sniExtension,
  splitsAgree,
  unrecord,
  type Hello,
} from '../helpers/clienthello.js';

/** hello builds a ClientHello body with the given extensions (null: none at all). */
function hello(extensions: Hello['extensions'], sessionId = Buffer.alloc(32, 1)): Hello {
  return { version: 0x0303, random: Buffer.alloc(32, 2), sessionId, ciphers: Buffer.from([0x13, 0x01, 0xc0, 0x2f]), compression: Buffer.from([0]), extensions };
}
const sni = (name: string) => ({ type: 0, data: sniExtension(Buffer.from(name, 'latin1')) });
const alpn = { type: 16, data: Buffer.from('000908687474702f312e31', 'hex') };
const wire = (h: Hello, sizes?: number[]) => record(encode(h), sizes);
const withByte = (b: Buffer, at: number, v: number) => {
  const c = Buffer.from(b);
  c[at] = v;
  return c;
};
const base = wire(hello([alpn, sni('www.example.com')]));

t.test('peekClientHello answers each kind of input', async (t) => {
  const hs = encode(hello([sni('www.example.com')]));
  const cases: [string, Buffer, string][] = [
    ['nothing yet', Buffer.alloc(0), 'more'],
    ['a plain HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'not-tls:not-handshake'],
    ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'), 'not-tls:not-handshake'],
    ['one handshake byte', Buffer.from([22]), 'more'],
    ['a record header with major version 2', Buffer.from([22, 2]), 'not-tls:bad-record'],
    ['a record over 2^14 bytes', Buffer.from([22, 3, 1, 0x40, 0x01, 1]), 'not-tls:bad-record'],
    ['a ServerHello, not a ClientHello', record(Buffer.concat([Buffer.from([2]), hs.subarray(1)])), 'not-tls:not-client-hello'],
    ['a handshake header that is still arriving', base.subarray(0, 7), 'more'],
    ['a body that is still arriving', base.subarray(0, base.length - 1), 'more'],
    ['the whole ClientHello', base, 'sni:www.example.com'],
    ['the ClientHello in 1-byte records', wire(hello([alpn, sni('www.example.com')]), [1]), 'sni:www.example.com'],
    ['empty records before and inside', wire(hello([sni('www.example.com')]), [0, 0, 10, 0, 16384]), 'sni:www.example.com'],
    ['bytes after the ClientHello (early data)', Buffer.concat([base, Buffer.from([23, 3, 3, 0, 1, 9])]), 'sni:www.example.com'],
    ['a record of another type before the hello ends', Buffer.concat([record(hs.subarray(0, 10)), Buffer.from([21, 3, 3, 0, 2, 1, 0])]), 'not-tls:bad-record'],
    ['no extensions at all (an old client)', wire(hello(null)), 'no-sni'],
    ['extensions without server_name', wire(hello([alpn])), 'no-sni'],
    ['an upper-case name, lowered', wire(hello([sni('WWW.Example.COM')])), 'sni:www.example.com'],
    ['an empty host name, as OpenSSL takes it', wire(hello([sni('')])), 'no-sni'],
    ['an IPv4 literal', wire(hello([sni('192.0.2.1')])), 'bad-sni'],
    ['a trailing dot', wire(hello([sni('example.com.')])), 'bad-sni'],
    ['a NUL in the name', wire(hello([sni('evil.com\0.example.com')])), 'bad-sni'],
    ['server_name twice', wire(hello([sni('a.example'), sni('b.example')])), 'not-tls:malformed'],
    ['two entries in one server_name', wire(hello([{ type: 0, data: Buffer.concat([Buffer.from([0, 0x14]), sniExtension(Buffer.from('a.example')).subarray(2), sniExtension(Buffer.from('b.example')).subarray(2)]) }])), 'not-tls:malformed'],
    ['a name type other than host_name', wire(hello([{ type: 0, data: sniExtension(Buffer.from('a.example'), 1) }])), 'not-tls:malformed'],
    ['an empty server_name extension', wire(hello([{ type: 0, data: Buffer.alloc(0) }])), 'not-tls:malformed'],
    ['a session id over 32 bytes', wire(hello([sni('a.example')], Buffer.alloc(33))), 'not-tls:malformed'],
    ['an extensions length one short', withByte(base, 5 + 4 + 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1 + 1, base[5 + 4 + 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1 + 1]! - 1), 'not-tls:malformed'],
    ['a handshake length past the records', withByte(base, 8, base[8]! + 1), 'more'],
    ['a handshake length that needs more than the bound', Buffer.from([22, 3, 1, 0, 4, 1, 0, 0x40, 0x00]), 'not-tls:too-large'],
  ];
  for (const [name, input, want] of cases) t.equal(show(peekClientHello(input)), want, name);
  t.equal(base.toString('hex'), wire(hello([alpn, sni('www.example.com')])).toString('hex'), 'the input buffer is left as it was');
});

t.test('the bound counts records across reads: tiny records past it are too large, not more', async (t) => {
  const hs = encode(hello([sni('bound.example'), { type: 21, data: Buffer.alloc(3000) }]));
  const tiny = record(hs, [1]); // 6 bytes on the wire per byte of handshake
  t.equal(show(peekClientHello(tiny)), 'not-tls:too-large');
  t.equal(show(peekClientHello(tiny.subarray(0, DEFAULT_MAX_CLIENT_HELLO_BYTES - 10))), 'more', 'below the bound it waits');
  t.equal(show(peekClientHello(tiny, 1 << 20)), 'sni:bound.example', 'a higher bound takes it');
});

t.test('what follows the ClientHello in its record does not count against the bound', async (t) => {
  const hs = encode(hello([sni('small.example')]));
  const full = record(Buffer.concat([hs, Buffer.alloc(16384 - hs.length, 0x42)]));
  t.equal(full.length, DEFAULT_MAX_CLIENT_HELLO_BYTES + 5, 'one full-size record');
  t.equal(show(peekClientHello(full.subarray(0, 5 + hs.length - 10))), 'more', 'the hello itself is within the bound: wait for it');
  t.equal(show(peekClientHello(full.subarray(0, 5 + hs.length + 10))), 'sni:small.example', 'decided before the record is complete');
  t.equal(show(peekClientHello(full)), 'sni:small.example');
});

t.test('hostName accepts DNS host names and nothing else', async (t) => {
  const cases: [string, string | null][] = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['a-b.c_d.example', 'a-b.c_d.example'],
    ['localhost', 'localhost'],
    ['x', 'x'],
    ['1password.com', '1password.com'],
    [`${'a'.repeat(63)}.test`, `${'a'.repeat(63)}.test`],
    [`${'a'.repeat(64)}.test`, null],
    [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`],
    [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`, null],
    ['', null],
    ['.', null],
    ['example.com.', null],
    ['.example.com', null],
    ['a..b', null],
    ['-a.example', null],
    ['a-.example', null],
    ['a b.example', null],
    ['a/b.example', null],
    ['a:443', null],
    ['[::1]', null],
    ['192.0.2.1', null],
    ['127.1', null],
    ['0x7f.1', null],
    ['2130706433', null],
    ['host.123', null],
    ['caf\xe9.example', null],
    ['nul\0.example', null],
  ];
  for (const [input, want] of cases) t.equal(hostName(Buffer.from(input, 'latin1')), want, JSON.stringify(input));
});

// Real clients against Node's own TLS server.
const corpus = await captureCorpus();
const oracle = await NodeOracle.start();
t.teardown(() => oracle.close());

t.test("real clients' ClientHellos read as Node's TLS server reads them", async (t) => {
  for (const c of corpus) {
    const verdict = await oracle.judge(c.bytes, 2000);
    t.same(verdict, c.servername === null ? { kind: 'no-sni' } : { kind: 'sni', name: c.servername }, `${c.label}: Node's server saw what the client sent`);
    t.equal(show(peekClientHello(c.bytes)), expected(verdict), `${c.label}: peekClientHello agrees`);
    const cuts = Array.from({ length: c.bytes.length }, (_, i) => i);
    t.equal(splitsAgree(c.bytes, cuts), -1, `${c.label}: every shorter prefix answers more`);
    const oneByteRecords = record(unrecord(c.bytes), [1]);
    t.same(await oracle.judge(oneByteRecords, 2000), verdict, `${c.label} in 1-byte records: Node's server agrees with itself`);
    t.equal(show(peekClientHello(oneByteRecords)), expected(verdict), `${c.label} in 1-byte records: peekClientHello agrees`);
  }
});

t.test('a ClientHello past the bound: Node takes it, the default bound refuses it, a higher bound agrees', async (t) => {
  const c = corpus.find((x) => x.servername === 'example.com')!;
  const h = decode(c.bytes);
  h.extensions!.push({ type: 21, data: Buffer.alloc(40_000) });
  const big = record(encode(h));
  t.same(await oracle.judge(big, 2000), { kind: 'sni', name: 'example.com' });
  t.equal(show(peekClientHello(big)), 'not-tls:too-large');
  t.equal(show(peekAll(big)), 'sni:example.com');
});

t.test('fuzzed ClientHellos: never a throw, and Node agrees wherever its server took the hello', async (t) => {
  const seed = 20261204;
  const report = await fuzz(corpus, oracle, seed, 400);
  t.same(report.failures, [], `seed ${seed}`);
  // The comparison has to have had something to compare.
  t.ok(report.node.sni >= 50, `${report.node.sni} inputs Node's server took with SNI`);
  t.ok(report.node['no-sni'] >= 10, `${report.node['no-sni']} inputs Node's server took without SNI`);
  t.ok(report.node.rejected >= 50, `${report.node.rejected} inputs Node's server refused`);
});
