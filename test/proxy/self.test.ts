import t from 'tap';
import type { NetworkInterfaceInfo } from 'node:os';
import { SelfGuard } from '../../src/proxy/self.js';

/** A host with loopback and one LAN address on each family (documentation ranges, never dialled). */
const interfaces = (): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
  lo: [
    { address: '127.0.0.1', family: 'IPv4', netmask: '255.0.0.0', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    { address: '::1', family: 'IPv6', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
  ],
  eth0: [
    { address: '192.0.2.10', family: 'IPv4', netmask: '255.255.255.0', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.10/24' },
    { address: 'fe80::1', family: 'IPv6', netmask: 'ffff:ffff:ffff:ffff::', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: '2001:db8::10', family: 'IPv6', netmask: 'ffff:ffff:ffff:ffff::', mac: '02:00:00:00:00:01', internal: false, cidr: '2001:db8::10/64', scopeid: 0 },
  ],
});

function guard(host: string, port = 9401, ipv6Only = false): SelfGuard {
  const g = new SelfGuard(interfaces);
  g.add(host, port, { ipv6Only });
  return g;
}

// [destination, bound to 127.0.0.1, bound to 0.0.0.0, bound to :: (dual stack), bound to :: (v6 only), bound to ::1]
const table: [string, boolean, boolean, boolean, boolean, boolean][] = [
  ['127.0.0.1', true, true, true, false, false],
  ['127.0.0.2', false, true, true, false, false],
  ['127.255.255.254', false, true, true, false, false],
  ['0.0.0.0', true, true, true, true, true],
  ['0.1.2.3', true, true, true, true, true],
  ['::', true, true, true, true, true],
  ['::ffff:127.0.0.1', true, true, true, false, false],
  ['::ffff:7f00:1', true, true, true, false, false],
  ['[::ffff:7f00:1]', true, true, true, false, false],
  ['0:0:0:0:0:ffff:7f00:0001', true, true, true, false, false],
  ['::127.0.0.1', true, true, true, false, false],
  ['::ffff:0:7f00:1', true, true, true, false, false],
  ['2130706433', true, true, true, false, false],
  ['0x7f000001', true, true, true, false, false],
  ['0177.0.0.1', true, true, true, false, false],
  ['127.1', true, true, true, false, false],
  ['0x7f.0.0.1', true, true, true, false, false],
  ['::1', false, false, true, true, true],
  ['0:0::1', false, false, true, true, true],
  ['192.0.2.10', false, true, true, false, false],
  ['::ffff:192.0.2.10', false, true, true, false, false],
  ['2001:db8::10', false, false, true, true, false],
  ['2001:DB8:0::0010', false, false, true, true, false],
  ['fe80::1%eth0', false, false, true, true, false],
  ['192.0.2.11', false, false, false, false, false],
  ['198.51.100.7', false, false, false, false, false],
  ['2001:db8::11', false, false, false, false, false],
  ['not-an-ip', false, false, false, false, false],
];

t.test('isSelf judges every spelling against every address the listener answers on', async (t) => {
  const modes = [guard('127.0.0.1'), guard('0.0.0.0'), guard('::'), guard('::', 9401, true), guard('::1')];
  const names = ['127.0.0.1', '0.0.0.0', ':: dual-stack', ':: v6-only', '::1'];
  for (const row of table) {
    for (let m = 0; m < modes.length; m++) {
      t.equal(modes[m]!.isSelf(row[0], 9401), row[m + 1], `${row[0]} against a listener on ${names[m]}`);
    }
  }
});

t.test('only the listener ports count', async (t) => {
  const g = guard('0.0.0.0', 9401);
  g.add('127.0.0.1', 9400);
  t.ok(g.isSelf('127.0.0.5', 9401));
  t.notOk(g.isSelf('127.0.0.5', 9400), '9400 is bound to 127.0.0.1 only');
  t.ok(g.isSelf('::ffff:7f00:1', 9400));
  t.notOk(g.isSelf('127.0.0.1', 8080), 'another port on this host is not Tollgate');
  t.notOk(g.isSelf('0.0.0.0', 8080), 'the unspecified address on another port is not Tollgate either');
});
