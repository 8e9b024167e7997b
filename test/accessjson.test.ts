import t from 'tap';
import { accessJson } from '../src/accessjson.js';
import type { AccessEntry } from '../src/log.js';
import { Rng } from './helpers/rng.js';

/** Pieces that JSON treats specially, beside plain text: quotes, escapes, controls, surrogates alone and paired, separators. */
const PIECES = ['a', 'Zz', 'user@example.com', 'http://h/p?q=1&r=2', ' ', '"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u2028', '\u2029', 'é', '日本', '\ud83d\ude00', '\ud83d', '\ude00', '\udfff\ud800', '[redacted]', '{}', ','];

function text(r: Rng): string {
  const n = r.int(6);
  let s = '';
  for (let i = 0; i < n; i++) s += r.pick(PIECES);
  return s;
}

function number(r: Rng): number {
  const pick = r.next();
  if (pick < 0.05) return Number.NaN;
  if (pick < 0.08) return Number.POSITIVE_INFINITY;
  if (pick < 0.1) return -0;
  if (pick < 0.15) return 1e21 * r.next();
  if (pick < 0.5) return Math.round(r.next() * 1e6) / 1000;
  return Math.floor(r.next() * 1e9);
}

/**
 * ascii spells a line in printable ASCII for a failure report: tap reads a raw U+2028 in an
 * assertion's message as a line break, and then counts the failing subtest as having no tests.
 */
function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);
}

/** entry builds an entry the way txlog's record does: every field in order, the door's fields last when set. */
function entry(r: Rng, shared: readonly string[]): AccessEntry {
  const groups = r.chance(0.3) ? shared : Array.from({ length: r.int(4) }, () => text(r));
  const e: AccessEntry = {
    time: text(r),
    node: text(r),
    login: text(r),
    department: text(r),
    groups,
    location: text(r),
    sublocation: text(r),
    clientIp: text(r),
    method: text(r),
    url: text(r),
    host: text(r),
    status: number(r),
    action: 'allowed',
    reason: text(r),
    protocol: 'HTTP',
    reqBytes: number(r),
    respBytes: number(r),
    durationMs: number(r),
  };
  if (r.chance(0.5)) {
    e.forwardingMethod = r.chance(0.5) ? 'explicit' : 'transparent';
    if (r.chance(0.7)) {
      e.protocol = 'SSL';
      e.decrypted = r.chance(0.5);
      e.sni = text(r);
    }
  }
  return e;
}

t.test('an access line is the text JSON.stringify gives, on generated entries', async (t) => {
  const r = new Rng(20261207);
  const shared = Object.freeze(['engineering', 'a "quoted" group', 'line\nbreak']);
  let mismatches = 0;
  let first = '';
  const N = 20_000;
  for (let i = 0; i < N; i++) {
    const e = entry(r, shared);
    const want = JSON.stringify(e);
    const got = accessJson(e);
    if (got !== want) {
      mismatches++;
      if (first === '') first = `entry ${i}: ${ascii(got)} !== ${ascii(want)}`;
    }
    // Every line is valid JSON whatever went into it.
    JSON.parse(got);
  }
  t.equal(mismatches, 0, first || `${N} entries identical`);
});

t.test('a line of every kind of entry txlog writes parses back to the entry', async (t) => {
  const base: AccessEntry = {
    time: '2026-12-07T23:50:01.123Z',
    node: 'n1',
    login: 'jdoe@example.com',
    department: 'Sales "EMEA"',
    groups: ['sales', 'all staff'],
    location: 'HQ',
    sublocation: 'Guest Wi-Fi',
    clientIp: '10.0.0.5',
    method: 'CONNECT',
    url: 'example.com:443',
    host: 'example.com',
    status: 200,
    action: 'allowed',
    reason: '',
    protocol: 'TUNNEL',
    reqBytes: 517,
    respBytes: 4096,
    durationMs: 12.345,
  };
  t.same(JSON.parse(accessJson(base)), base);
  const transparent = { ...base, forwardingMethod: 'transparent' as const, protocol: 'SSL' as const, decrypted: true, sni: 'example.com' };
  t.same(JSON.parse(accessJson(transparent)), transparent);
  t.equal(accessJson(transparent), JSON.stringify(transparent));
  const noGroups = { ...base, groups: Object.freeze([]) as readonly string[], login: '', department: '' };
  t.equal(accessJson(noGroups), JSON.stringify(noGroups));
});

t.test('a group list is encoded once per list, and a new list is encoded anew', async (t) => {
  const e: AccessEntry = JSON.parse(accessJson({ time: 't', node: 'n', login: 'l', department: 'd', groups: ['a'], location: '', sublocation: '', clientIp: '', method: 'GET', url: '/', host: '', status: 200, action: 'allowed', reason: '', protocol: 'HTTP', reqBytes: 0, respBytes: 0, durationMs: 0 })) as AccessEntry;
  const first = Object.freeze(['x', 'y']);
  t.same((JSON.parse(accessJson({ ...e, groups: first })) as AccessEntry).groups, ['x', 'y']);
  t.same((JSON.parse(accessJson({ ...e, groups: first })) as AccessEntry).groups, ['x', 'y'], 'the cached list reads the same');
  t.same((JSON.parse(accessJson({ ...e, groups: Object.freeze(['z']) })) as AccessEntry).groups, ['z'], "a session's replaced list is not the old one's text");
});
