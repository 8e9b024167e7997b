/**
 * The PAC sandbox answers dnsResolve, isResolvable, isInNet and myIpAddress itself: evaluating a
 * PAC file never reaches the system resolver or opens a socket.
 */
import t from 'tap';
import dns from 'node:dns';
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';
import { answerProblem, PacEvaluator } from '../../src/pac/evaluate.js';

/** Every way pac-resolver's own functions reach the network, replaced by a recorder. */
const reached: string[] = [];
const realLookup = dns.lookup;
const realConnect = net.connect;
(dns as { lookup: unknown }).lookup = (host: string, ...rest: unknown[]) => {
  reached.push(`dns.lookup ${host}`);
  const cb = rest[rest.length - 1] as (err: Error | null, addr?: string, family?: number) => void;
  cb(null, '203.0.113.99', 4);
};
(net as { connect: unknown }).connect = (...args: unknown[]) => {
  reached.push(`net.connect ${JSON.stringify(args[0])}`);
  return realConnect({ host: '127.0.0.1', port: 9 });
};
syncBuiltinESMExports();
t.teardown(() => {
  dns.lookup = realLookup;
  net.connect = realConnect;
  syncBuiltinESMExports();
});

const PAC = `function FindProxyForURL(url, host) {
  return [dnsResolve(host), isResolvable(host), isInNet(host, "10.0.0.0", "255.0.0.0"), myIpAddress()].join(",");
}`;

t.test('name lookups answer from the static hosts map only, and myIpAddress is the client asked about', async (t) => {
  const ev = await PacEvaluator.compile(PAC, { clientIp: '192.0.2.44', hosts: new Map([['intranet.lab.test', '10.9.8.7']]) });
  t.teardown(() => ev.dispose());
  const cases: [string, string][] = [
    ['http://www.example.com/', ',false,false,192.0.2.44'],
    ['http://intranet.lab.test/', '10.9.8.7,true,true,192.0.2.44'],
    ['http://10.1.1.1/', '10.1.1.1,true,true,192.0.2.44'],
    ['http://11.1.1.1/', '11.1.1.1,true,false,192.0.2.44'],
  ];
  for (const [url, want] of cases) t.equal((await ev.run(url)).result, want, url);
  t.same(reached, [], 'nothing reached the resolver or the network');
});

t.test('the recorder itself works: pac-resolver unsandboxed would have looked names up', async (t) => {
  // This proves the test above could fail: the same lookup through Node's dns module is seen.
  await new Promise<void>((resolve) => dns.lookup('www.example.com', () => resolve()));
  t.same(reached.splice(0), ['dns.lookup www.example.com']);
});

t.test('answerProblem accepts what browsers accept and names what they cannot use', async (t) => {
  const cases: [unknown, string | null][] = [
    ['DIRECT', null],
    ['PROXY a.example:8080', null],
    ['PROXY a.example:8080; PROXY [2001:db8::1]:3128; DIRECT', null],
    ['HTTPS secure.example:443;', null],
    ['SOCKS5 127.0.0.1:1080', null],
    ['', 'not a list'],
    ['PROXY', 'not a list'],
    ['PROXY a b', 'not a list'],
    ['direct', 'not a list'],
    [42, 'returned number, not a string'],
    [null, 'returned null, not a string'],
    [undefined, 'returned undefined, not a string'],
  ];
  for (const [result, want] of cases) {
    const p = answerProblem(result);
    if (want === null) t.equal(p, null, JSON.stringify(result));
    else t.match(p, want, String(result));
  }
});
