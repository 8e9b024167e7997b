import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { compileLocator } from '../../src/proxy/locate.js';

const config = validateConfig({
  locations: [
    { name: 'HQ', ips: ['10.0.0.0/8', '2001:db8::/32'], enforceAuthentication: true, sublocations: [
      { name: 'Guest', ips: ['10.1.0.0/16', '2001:db8:1::/48'], enforceAuthentication: false },
      { name: 'Lab', ips: ['10.1.2.0/24'] },
    ] },
    { name: 'Branch', ips: ['10.200.0.0/16', '192.0.2.7'] },
    { name: 'Whole', ips: ['0.0.0.0/1'] },
  ],
});
const loc = compileLocator(config.locations);

t.test('longest prefix wins, IPv4 and IPv6', async (t) => {
  const cases: [string, string | null, string | null, boolean | null][] = [
    // ip, location, sublocation, enforce
    ['10.0.0.1', 'HQ', null, true],
    ['10.255.255.255', 'HQ', null, true],
    ['10.1.0.1', 'HQ', 'Guest', false],
    ['10.1.2.3', 'HQ', 'Lab', true], // Lab has no override: inherits HQ's
    ['10.1.3.0', 'HQ', 'Guest', false],
    ['10.200.1.1', 'Branch', null, false], // a more specific location beats a broader one
    ['192.0.2.7', 'Branch', null, false],
    ['192.0.2.8', null, null, null],
    ['11.0.0.1', 'Whole', null, false],
    ['127.255.255.255', 'Whole', null, false],
    ['128.0.0.0', null, null, null],
    ['2001:db8::1', 'HQ', null, true],
    ['2001:db8:1::abcd', 'HQ', 'Guest', false],
    ['2001:DB8:1:0:0:0:0:1', 'HQ', 'Guest', false],
    ['2001:db9::1', null, null, null],
    ['::ffff:10.1.2.3', 'HQ', 'Lab', true],
    ['::1', null, null, null],
    ['not-an-ip', null, null, null],
    ['10.0.0', null, null, null],
    ['', null, null, null],
  ];
  for (const [ip, l, s, e] of cases) {
    const m = loc.lookup(ip);
    t.equal(m?.location.name ?? null, l, `${ip} location`);
    t.equal(m?.sublocation?.name ?? null, s, `${ip} sublocation`);
    if (e !== null) t.equal(m?.enforceAuthentication, e, `${ip} enforce`);
  }
});

t.test('no locations means every source is unknown', async (t) => {
  const empty = compileLocator([]);
  t.equal(empty.lookup('10.0.0.1'), null);
  t.equal(empty.lookup('::1'), null);
});

t.test('same answer object each time (lookup builds nothing)', async (t) => {
  t.equal(loc.lookup('10.1.2.3'), loc.lookup('10.1.2.4'));
});
