import t from 'tap';
import { parseIPv4, parseIPv6Into, parseCidr, normalizeIp, ipToBigInt } from '../../src/config/ip.js';

t.test('parseIPv4', async (t) => {
  const cases: [string, number][] = [
    ['0.0.0.0', 0], ['127.0.0.1', 0x7f000001], ['255.255.255.255', 0xffffffff], ['10.1.2.3', 0x0a010203],
    ['256.0.0.1', -1], ['1.2.3', -1], ['1.2.3.4.5', -1], ['01.2.3.4', -1], ['1..2.3', -1], ['a.b.c.d', -1], ['', -1], ['1.2.3.4 ', -1],
  ];
  for (const [s, v] of cases) t.equal(parseIPv4(s), v, s);
});

t.test('parseIPv6Into agrees with the bigint form', async (t) => {
  const out = new Uint16Array(8);
  const good: [string, string][] = [
    ['::', '0'], ['::1', '1'], ['1::', (1n << 112n).toString()], ['2001:db8::1', '42540766411282592856903984951653826561'],
    ['::ffff:1.2.3.4', ((0xffffn << 32n) | 0x01020304n).toString()], ['fe80::1%eth0', ((0xfe80n << 112n) | 1n).toString()],
    ['1:2:3:4:5:6:7:8', '5192455318486707404433266433261576'],
  ];
  for (const [s, v] of good) {
    t.ok(parseIPv6Into(s, out), s);
    t.equal(ipToBigInt(s)?.value.toString(), v, s);
  }
  for (const s of [':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7', '::1.2.3', '1:', ':1']) {
    t.notOk(parseIPv6Into(s, out), `refuses ${s}`);
  }
});

t.test('parseCidr', async (t) => {
  const c = parseCidr('10.0.0.0/8');
  t.ok(typeof c !== 'string' && c.prefix === 8 && c.end - c.start === (1n << 24n) - 1n);
  t.equal(typeof parseCidr('::/0'), 'object');
  t.match(parseCidr('10.0.0.0/33'), /prefix must be 0-32/);
  t.match(parseCidr('2001:db8::/129'), /prefix must be 0-128/);
  t.match(parseCidr('10.0.0.1/8'), /host bits/);
  t.match(parseCidr('10.0.0.0/-1'), /prefix/);
  t.match(parseCidr('x/8'), /not a CIDR/);
});

t.test('normalizeIp', async (t) => {
  t.equal(normalizeIp('::ffff:127.0.0.1'), '127.0.0.1');
  t.equal(normalizeIp('::1'), '::1');
  t.equal(normalizeIp('10.0.0.1'), '10.0.0.1');
});

t.test('canonicalIp brings every spelling of an address to one text', async (t) => {
  const { canonicalIp, parseInetAton } = await import('../../src/config/ip.js');
  const table: [string, string | null][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F.0.0.1', '127.0.0.1'],
    ['0177.0.0.01', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['4294967295', '255.255.255.255'],
    ['4294967296', null],
    ['256.0.0.1', null],
    ['1.2.3.4.5', null],
    ['08.0.0.1', null],
    ['1..2', null],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:7F00:1', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1'],
    ['::127.0.0.1', '127.0.0.1'],
    ['::ffff:0:7f00:1', '127.0.0.1'],
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['example.com', null],
    ['', null],
  ];
  for (const [input, want] of table) t.equal(canonicalIp(input), want, input);
  t.equal(parseInetAton('0x100.0.0.1'), -1, 'a part over 255 that is not the last is refused');
});
