/**
 * The proxy cannot be pointed at Tollgate's own listeners, in any spelling of their addresses, by
 * GET, CONNECT or WebSocket, whether the listeners are bound to loopback or to a wildcard. Each
 * row says, per listener binding, whether the spelling reaches a listener (and must be refused as
 * a loop) or reaches nothing there (and must fail as any unreachable origin does, not as a loop).
 */
import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { rawExchange, startTestTollgate, testConfig, type TestTollgate } from '../helpers/tollgate.js';

async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

type Mode = 'loopback' | 'wildcard4' | 'wildcard6';
/** [host as written in a URL or CONNECT authority, the modes in which it reaches our listeners] */
const spellings: [string, Mode[]][] = [
  ['127.0.0.1', ['loopback', 'wildcard4', 'wildcard6']],
  ['localhost', ['loopback', 'wildcard4', 'wildcard6']],
  ['LocalHost.', ['loopback', 'wildcard4', 'wildcard6']],
  ['tollgate.localhost', ['loopback', 'wildcard4', 'wildcard6']],
  ['0.0.0.0', ['loopback', 'wildcard4', 'wildcard6']],
  ['[::]', ['loopback', 'wildcard4', 'wildcard6']],
  ['[::ffff:7f00:1]', ['loopback', 'wildcard4', 'wildcard6']],
  ['[::ffff:127.0.0.1]', ['loopback', 'wildcard4', 'wildcard6']],
  ['[0:0:0:0:0:ffff:7f00:0001]', ['loopback', 'wildcard4', 'wildcard6']],
  ['[::127.0.0.1]', ['loopback', 'wildcard4', 'wildcard6']],
  ['2130706433', ['loopback', 'wildcard4', 'wildcard6']],
  ['0x7f000001', ['loopback', 'wildcard4', 'wildcard6']],
  ['0177.0.0.1', ['loopback', 'wildcard4', 'wildcard6']],
  ['127.1', ['loopback', 'wildcard4', 'wildcard6']],
  ['0x7f.0.0.1', ['loopback', 'wildcard4', 'wildcard6']],
  ['127.0.0.2', ['wildcard4', 'wildcard6']],
  ['127.200.0.1', ['wildcard4', 'wildcard6']],
  ['[::1]', ['wildcard6']],
  ['self.test', ['loopback', 'wildcard4', 'wildcard6']],
  ['zero.test', ['loopback', 'wildcard4', 'wildcard6']],
  ['mapped.test', ['loopback', 'wildcard4', 'wildcard6']],
];
/** Spellings that only the URL parser accepts (a CONNECT authority is not percent-decoded). */
const urlOnly: string[] = ['%31%32%37.0.0.1', '127.0.0.1.'];

const binds: Record<Mode, string> = { loopback: '127.0.0.1', wildcard4: '0.0.0.0', wildcard6: '[::]' };

for (const mode of Object.keys(binds) as Mode[]) {
  t.test(`listeners bound to ${binds[mode]}`, async (t) => {
    const bindHost = binds[mode].replace(/^\[|\]$/g, '');
    const proxyPort = await freePort(bindHost);
    const controlPort = await freePort(bindHost);
    const tg: TestTollgate = await startTestTollgate((dir) =>
      testConfig(dir, {
        listeners: { proxy: `${binds[mode]}:${proxyPort}`, control: `${binds[mode]}:${controlPort}` },
        // Both of our ports are allowed tunnel targets, which is when a CONNECT to them is worst.
        connectPorts: [443, proxyPort, controlPort],
        hosts: { 'self.test': '127.0.0.1', 'zero.test': '0.0.0.0', 'mapped.test': '::ffff:127.0.0.1' },
      }),
    );
    t.teardown(() => tg.close());

    const rows: [string, boolean, boolean][] = [
      ...spellings.map(([h, modes]): [string, boolean, boolean] => [h, modes.includes(mode), true]),
      ...urlOnly.map((h): [string, boolean, boolean] => [h, true, false]),
    ];
    for (const [host, reaches, connectForm] of rows) {
      for (const port of [controlPort, proxyPort]) {
        const which = port === controlPort ? 'control' : 'proxy';
        const get = await rawExchange(tg.proxyPort, `GET http://${host}:${port}/metrics HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`, 3000);
        const ws = await rawExchange(
          tg.proxyPort,
          `GET http://${host}:${port}/ HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
          3000,
        );
        const answers: [string, string][] = [
          ['GET', get],
          ['WebSocket', ws],
        ];
        if (connectForm) {
          const connect = await rawExchange(tg.proxyPort, `CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\nGET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 3000);
          answers.push(['CONNECT', connect]);
        }
        for (const [proto, out] of answers) {
          const label = `${proto} ${host} to the ${which} port`;
          t.notMatch(out, /^HTTP\/1\.1 (200|101) /, `${label}: not answered by our own listener`);
          t.notMatch(out, /tollgate_|# HELP/, `${label}: no metrics leak`);
          if (reaches) t.match(out, /^HTTP\/1\.1 403 [^]*x-tollgate-error: loop_detected/i, `${label}: refused as a loop`);
          else t.notMatch(out, /loop_detected/, `${label}: reaches nothing here, so it fails as an unreachable origin, not as a loop`);
        }
      }
    }
    // Everything refused as a loop is in the access log as blocked, never as allowed.
    const loops = tg.entries().filter((e) => e.reason === 'loop_detected');
    t.ok(loops.length > 0);
    t.ok(loops.every((e) => e.action === 'blocked' && e.status === 403), 'loops are logged as blocked with 403');
  });
}
