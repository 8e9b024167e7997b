/**
 * locate: source IP → location and sublocation, longest prefix wins.
 *
 * At activation every location and sublocation CIDR is flattened into sorted, disjoint address
 * ranges; a lookup is then a binary search over typed arrays. Parsing writes into module scratch
 * space, so a lookup allocates nothing.
 */
import { parseCidr, parseIPv4, parseIPv6Into, type Cidr } from '../config/ip.js';
import type { LocationConfig, SublocationConfig } from '../config/schema.js';

/** LocationMatch is the answer for one address: the location, and its sublocation when one matched. */
export interface LocationMatch {
  readonly location: LocationConfig;
  readonly sublocation: SublocationConfig | null;
  /** enforceAuthentication after the sublocation's override. */
  readonly enforceAuthentication: boolean;
  /** trustedForwarders of the location as a set, for X-Forwarded-For. */
  readonly trustedForwarders: ReadonlySet<string>;
}

/** Locator answers lookups against one compiled config. */
export interface Locator {
  lookup(ip: string): LocationMatch | null;
}

interface Entry {
  cidr: Cidr;
  rank: number; // longer prefix wins; a sublocation beats its location on a tie
  match: number;
}

/** Range tables for one family: parallel arrays of range starts/ends and the match index. */
interface Table {
  /** v4: one number per range; v6: four 32-bit words per range. */
  starts: Float64Array | Uint32Array;
  ends: Float64Array | Uint32Array;
  matches: Int32Array;
  count: number;
}

const v6scratch = new Uint16Array(8);

/** compileLocator builds the lookup tables for a set of locations. */
export function compileLocator(locations: readonly LocationConfig[]): Locator {
  const matches: LocationMatch[] = [];
  const entries: Entry[] = [];
  for (const location of locations) {
    const trustedForwarders = new Set(location.trustedForwarders);
    const locIdx = matches.push(Object.freeze({ location, sublocation: null, enforceAuthentication: location.enforceAuthentication, trustedForwarders })) - 1;
    for (const ip of location.ips) entries.push({ cidr: mustParse(ip), rank: 0, match: locIdx });
    for (const sub of location.sublocations) {
      const enforce = sub.enforceAuthentication ?? location.enforceAuthentication;
      const subIdx = matches.push(Object.freeze({ location, sublocation: sub, enforceAuthentication: enforce, trustedForwarders })) - 1;
      for (const ip of sub.ips) entries.push({ cidr: mustParse(ip), rank: 1, match: subIdx });
    }
  }
  for (const e of entries) e.rank += e.cidr.prefix * 2;
  const v4 = buildTable(entries.filter((e) => e.cidr.family === 4), 4);
  const v6 = buildTable(entries.filter((e) => e.cidr.family === 6), 6);

  return {
    lookup(ip: string): LocationMatch | null {
      const a = parseIPv4(ip);
      if (a >= 0) return hit(search4(v4, a));
      if (!parseIPv6Into(ip, v6scratch)) return null;
      const s = v6scratch;
      // IPv4-mapped (::ffff:a.b.c.d) belongs to the IPv4 table.
      if (s[0] === 0 && s[1] === 0 && s[2] === 0 && s[3] === 0 && s[4] === 0 && s[5] === 0xffff) {
        return hit(search4(v4, s[6]! * 65536 + s[7]!));
      }
      return hit(search6(v6, s[0]! * 65536 + s[1]!, s[2]! * 65536 + s[3]!, s[4]! * 65536 + s[5]!, s[6]! * 65536 + s[7]!));
    },
  };

  function hit(i: number): LocationMatch | null {
    return i < 0 ? null : matches[i]!;
  }
}

function mustParse(text: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === 'string') throw new Error(c); // unreachable: config validation already refused it
  return c;
}

/** buildTable flattens possibly-nested CIDRs into disjoint ranges, each owned by its most specific entry. */
function buildTable(entries: Entry[], family: 4 | 6): Table {
  const points = new Set<bigint>();
  for (const e of entries) {
    points.add(e.cidr.start);
    points.add(e.cidr.end + 1n);
  }
  const sorted = [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ranges: { start: bigint; end: bigint; match: number }[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    const start = sorted[i]!;
    const end = sorted[i + 1]! - 1n;
    let best: Entry | null = null;
    for (const e of entries) {
      if (e.cidr.start <= start && e.cidr.end >= end && (best === null || e.rank > best.rank)) best = e;
    }
    if (best === null) continue;
    const last = ranges[ranges.length - 1];
    if (last && last.match === best.match && last.end + 1n === start) last.end = end;
    else ranges.push({ start, end, match: best.match });
  }
  const words = family === 4 ? 1 : 4;
  const starts = family === 4 ? new Float64Array(ranges.length) : new Uint32Array(ranges.length * 4);
  const ends = family === 4 ? new Float64Array(ranges.length) : new Uint32Array(ranges.length * 4);
  const matches = new Int32Array(ranges.length);
  ranges.forEach((r, i) => {
    for (let w = 0; w < words; w++) {
      const shift = BigInt((words - 1 - w) * 32);
      starts[i * words + w] = Number((r.start >> shift) & 0xffffffffn);
      ends[i * words + w] = Number((r.end >> shift) & 0xffffffffn);
    }
    matches[i] = r.match;
  });
  return { starts, ends, matches, count: ranges.length };
}

function search4(t: Table, a: number): number {
  let lo = 0;
  let hi = t.count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (a < t.starts[mid]!) hi = mid - 1;
    else if (a > t.ends[mid]!) lo = mid + 1;
    else return t.matches[mid]!;
  }
  return -1;
}

/** cmp6 compares the address (w0..w3) with the 4-word value at arr[i*4]. */
function cmp6(arr: Float64Array | Uint32Array, i: number, w0: number, w1: number, w2: number, w3: number): number {
  const o = i * 4;
  if (w0 !== arr[o]) return w0 < arr[o]! ? -1 : 1;
  if (w1 !== arr[o + 1]) return w1 < arr[o + 1]! ? -1 : 1;
  if (w2 !== arr[o + 2]) return w2 < arr[o + 2]! ? -1 : 1;
  if (w3 !== arr[o + 3]) return w3 < arr[o + 3]! ? -1 : 1;
  return 0;
}

function search6(t: Table, w0: number, w1: number, w2: number, w3: number): number {
  let lo = 0;
  let hi = t.count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp6(t.starts, mid, w0, w1, w2, w3) < 0) hi = mid - 1;
    else if (cmp6(t.ends, mid, w0, w1, w2, w3) > 0) lo = mid + 1;
    else return t.matches[mid]!;
  }
  return -1;
}
