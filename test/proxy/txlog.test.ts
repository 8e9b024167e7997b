import t from 'tap';
import net from 'node:net';
import type { IncomingMessage } from 'node:http';
import { validateConfig } from '../../src/config/validate.js';
import { buildRuntime } from '../../src/runtime.js';
import { Metrics } from '../../src/metrics.js';
import type { AccessEntry } from '../../src/log.js';
import { TxLog, type Arrival } from '../../src/proxy/txlog.js';

const rt = buildRuntime(validateConfig({ nodeName: 'n1', locations: [{ name: 'lab', ips: ['127.0.0.0/8'] }] }, 'test'), 1);
const req = { method: 'GET', url: 'http://example.test/a', headers: {} } as unknown as IncomingMessage;

t.test('every door writes the same line; a TLS door adds only its own fields', async (t) => {
  const doors: { name: string; arrival: Arrival; extra: Partial<AccessEntry> }[] = [
    { name: 'explicit', arrival: { door: 'explicit', peerIp: '127.0.0.5', forwardingMethod: 'explicit', tls: null }, extra: {} },
    {
      name: 'decrypted',
      arrival: { door: 'decrypted', peerIp: '127.0.0.5', forwardingMethod: 'explicit', tls: { protocol: 'SSL', decrypted: true, sni: 'example.test' } },
      extra: { protocol: 'SSL', decrypted: true, sni: 'example.test', forwardingMethod: 'explicit' },
    },
    { name: 'transparent', arrival: { door: 'transparent', peerIp: '127.0.0.5', forwardingMethod: 'transparent', tls: null }, extra: { forwardingMethod: 'transparent' } },
  ];
  const lines: AccessEntry[] = [];
  const metrics = new Metrics();
  const log = new TxLog({ write: (e) => lines.push(e) }, metrics);
  const socket = new net.Socket();
  for (const d of doors) {
    const st = log.begin(rt, req, 'HTTP', d.arrival);
    t.equal(st.tx.clientIp, '127.0.0.5', `${d.name}: client IP from the arrival`);
    t.equal(st.tx.match?.location.name, 'lab', `${d.name}: located`);
    st.tx.host = 'example.test';
    log.record(st, socket, 200);
    log.record(st, socket, 200);
  }
  t.equal(lines.length, doors.length, 'one line per transaction, however often it is recorded');
  const base = (e: AccessEntry) => {
    const { time: _t, durationMs: _d, ...rest } = e;
    return rest;
  };
  const explicit = base(lines[0]!);
  t.notOk('decrypted' in explicit || 'sni' in explicit || 'forwardingMethod' in explicit, 'the explicit listener adds nothing');
  doors.forEach((d, i) => t.same(base(lines[i]!), { ...explicit, ...d.extra }, `${d.name}: the explicit line plus its own fields`));
  const counted = (await metrics.registry.getSingleMetric('tollgate_requests_total')!.get()).values;
  t.same(
    counted.map((v) => [v.labels, v.value]),
    [[{ action: 'allowed', status: '200', protocol: 'HTTP' }, 3]],
    'counted once each, under one label set',
  );
});

t.test('the line is stamped with the time it was recorded, in toISOString form', async (t) => {
  const lines: AccessEntry[] = [];
  const log = new TxLog({ write: (e) => lines.push(e) }, new Metrics());
  const socket = new net.Socket();
  for (let i = 0; i < 3; i++) {
    const st = log.begin(rt, req, 'HTTP', { door: 'explicit', peerIp: '127.0.0.5', forwardingMethod: 'explicit', tls: null });
    const before = Date.now();
    log.record(st, socket, 200);
    const after = Date.now();
    const at = Date.parse(lines[i]!.time);
    t.ok(at >= before && at <= after, `${lines[i]!.time} lies between the clock readings around the record`);
    t.equal(new Date(at).toISOString(), lines[i]!.time, 'in toISOString form');
    // The next line is recorded in a later millisecond, and must not carry this one's stamp.
    const ms = Date.now();
    while (Date.now() === ms);
  }
  t.ok(lines[2]!.time > lines[0]!.time, 'a later record carries a later time');
});
