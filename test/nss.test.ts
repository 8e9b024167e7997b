import t from 'tap';
import type { AccessEntry } from '../src/log.js';
import { encodeUrl, NSS_FIELDS, nssLine, nssTime } from '../src/nss.js';

const entry = (over: Partial<AccessEntry> = {}): AccessEntry => ({
  time: '2022-06-20T15:29:11.123Z',
  node: 'n1',
  login: 'jdoe@safemarch.com',
  department: 'Sales Team',
  groups: [],
  location: 'HQ',
  sublocation: '',
  clientIp: '172.17.3.49',
  method: 'GET',
  url: 'http://ebay.com/',
  host: 'ebay.com',
  status: 200,
  action: 'allowed',
  reason: '',
  protocol: 'HTTP',
  reqBytes: 72,
  respBytes: 14061,
  durationMs: 12.6,
  ...over,
});

t.test('an entry becomes one tab-delimited NSS web-log line, fields in order', async (t) => {
  const cases: [string, Partial<AccessEntry>, string][] = [
    ['allowed', {}, 'Mon Jun 20 15:29:11 2022\tjdoe@safemarch.com\tHTTP\tebay.com/\tAllowed\tNone\t72\t14061\t13\tHQ\tSales Team\t172.17.3.49\tGET\t200'],
    ['a tunnel', { url: 'ebay.com:443', protocol: 'TUNNEL', method: 'CONNECT' }, 'Mon Jun 20 15:29:11 2022\tjdoe@safemarch.com\tSSL\tebay.com:443\tAllowed\tNone\t72\t14061\t13\tHQ\tSales Team\t172.17.3.49\tCONNECT\t200'],
    ['blocked, no user, sublocation', { login: '', department: '', action: 'blocked', reason: 'auth_required', status: 403, sublocation: 'guest' }, 'Mon Jun 20 15:29:11 2022\tNone\tHTTP\tebay.com/\tBlocked\tauth_required\t72\t14061\t13\tHQ->guest\tNone\t172.17.3.49\tGET\t403'],
    ['a URL with a space, a tab and UTF-8', { url: 'http://ebay.com/a b\tc/é' }, 'Mon Jun 20 15:29:11 2022\tjdoe@safemarch.com\tHTTP\tebay.com/a%20b%09c/%C3%A9\tAllowed\tNone\t72\t14061\t13\tHQ\tSales Team\t172.17.3.49\tGET\t200'],
    ['a value with a line break cannot split the line', { department: 'Sales\nInjected\tfield' }, 'Mon Jun 20 15:29:11 2022\tjdoe@safemarch.com\tHTTP\tebay.com/\tAllowed\tNone\t72\t14061\t13\tHQ\tSales%0AInjected%09field\t172.17.3.49\tGET\t200'],
  ];
  for (const [name, over, want] of cases) {
    const line = nssLine(entry(over));
    t.equal(line, want, name);
    t.equal(line.split('\t').length, NSS_FIELDS.length, `${name}: ${NSS_FIELDS.length} fields`);
    t.notMatch(line, /[\r\n]/, `${name}: one line`);
  }
});

t.test('NSS time and URL encoding', async (t) => {
  t.equal(nssTime('2023-10-16T22:55:48Z'), 'Mon Oct 16 22:55:48 2023');
  t.equal(nssTime('2024-02-01T03:04:05Z'), 'Thu Feb 01 03:04:05 2024');
  t.equal(nssTime('nonsense'), 'None');
  t.equal(encodeUrl('a\x00\x1f\x20\x7e\x7f'), 'a%00%1F%20~%7F');
});
