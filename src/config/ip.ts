/**
 * ip: allocation-free IPv4/IPv6 text parsing for the hot path, plus CIDR parsing for config.
 *
 * The proxy parses every client address on every request, so parseIPv4 and parseIPv6Into walk the
 * string by char code and write into caller-owned storage instead of building arrays.
 */

/** parseIPv4 returns the address as an unsigned 32-bit number, or -1 when `s[from..to)` is not dotted quad. */
export function parseIPv4(s: string, from = 0, to = s.length): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // A leading zero ("010") is ambiguous (octal in some parsers), so it is refused.
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (part > 255 || ++digits > 3) return -1;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

/**
 * parseIPv6Into parses an IPv6 address (with `::`, an embedded IPv4 tail and an optional `%zone`)
 * into 8 hextets in `out`. Returns false when the text is not an IPv6 address.
 */
export function parseIPv6Into(s: string, out: Uint16Array): boolean {
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  let n = 0; // hextets written before "::"
  let gap = -1; // index in out where "::" sits
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === 58 && s.charCodeAt(1) === 58) {
    gap = 0;
    i = 2;
    if (end === 2) {
      out.fill(0);
      return true;
    }
  } else if (s.charCodeAt(0) === 58) {
    return false;
  }
  while (i < end) {
    // Find the end of this group.
    let j = i;
    let hex = 0;
    let len = 0;
    let sawDot = false;
    while (j < end) {
      const c = s.charCodeAt(j);
      if (c === 58) break;
      if (c === 46) sawDot = true;
      j++;
    }
    if (sawDot) {
      // Dotted IPv4 tail takes two hextets and must be last.
      if (j !== end || n > 6) return false;
      const v4 = parseIPv4(s, i, end);
      if (v4 < 0) return false;
      out[n++] = Math.floor(v4 / 65536);
      out[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    for (let k = i; k < j; k++) {
      const c = s.charCodeAt(k);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else return false;
      hex = hex * 16 + d;
      len++;
    }
    if (len === 0 || len > 4 || n >= 8) return false;
    out[n++] = hex;
    if (j === end) {
      i = end;
      break;
    }
    // j is at ':'; a second ':' makes "::".
    if (j + 1 < end && s.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i = j + 2;
      if (i === end) break;
    } else {
      i = j + 1;
      if (i === end) return false; // trailing single ':'
    }
  }
  if (gap < 0) return n === 8;
  if (n >= 8) return false;
  // Move the hextets after "::" to the end and zero the gap.
  const tail = n - gap;
  for (let k = 0; k < tail; k++) out[7 - k] = out[n - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}

/** Cidr is a parsed network: its family, prefix length and first/last address as big integers. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly prefix: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly text: string;
}

const scratch = new Uint16Array(8);

/** ipToBigInt converts an address to its integer value and family, or null when it is not an address. */
export function ipToBigInt(text: string): { family: 4 | 6; value: bigint } | null {
  const v4 = parseIPv4(text);
  if (v4 >= 0) return { family: 4, value: BigInt(v4) };
  if (!parseIPv6Into(text, scratch)) return null;
  let v = 0n;
  for (let k = 0; k < 8; k++) v = (v << 16n) | BigInt(scratch[k]!);
  return { family: 6, value: v };
}

/**
 * parseCidr parses `a.b.c.d/n`, `x::y/n`, or a bare address (a host route). Host bits set below the
 * prefix are refused, since `10.0.0.5/8` is almost always a typo for something else.
 */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const ip = ipToBigInt(addr);
  if (ip === null) return `"${text}" is not a CIDR`;
  const bits = ip.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) return `"${text}" is not a CIDR: prefix must be 0-${bits}`;
    prefix = Number(p);
  }
  const hostBits = BigInt(bits - prefix);
  const hostMask = (1n << hostBits) - 1n;
  if ((ip.value & hostMask) !== 0n) return `"${text}" has host bits set below /${prefix}`;
  return { family: ip.family, prefix, start: ip.value, end: ip.value | hostMask, text };
}

/** cidrContains tells whether `inner` lies wholly inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.start >= outer.start && inner.end <= outer.end;
}

/** normalizeIp strips an IPv4-mapped IPv6 prefix (`::ffff:1.2.3.4`), so dual-stack sockets report IPv4 peers as IPv4. */
export function normalizeIp(addr: string): string {
  if (addr.length > 7 && addr.charCodeAt(0) === 58 && addr.startsWith('::ffff:') && addr.indexOf('.') > 0) {
    return addr.slice(7);
  }
  return addr;
}

/**
 * parseHostPort splits `host:port` / `[v6]:port` (listeners, CONNECT targets, Host headers); the
 * host comes back lower-case. Port 0 is accepted (listen on any port); callers that dial refuse it.
 */
export function parseHostPort(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+)):(\d{1,5})$/i.exec(v);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: (m[1] ?? m[2]!).toLowerCase(), port };
}

/**
 * parseInetAton reads the IPv4 spellings that inet_aton(3) (and so getaddrinfo and the WHATWG URL
 * parser) accept besides dotted quad: one to four parts, each decimal, octal (leading 0) or hex
 * (0x), the last part filling the bytes that remain (`127.1`, `2130706433`, `0x7f.0.0.1`,
 * `0177.0.0.1`). Returns the address as an unsigned 32-bit number, or -1.
 */
export function parseInetAton(s: string): number {
  if (s.length === 0 || s.length > 64) return -1;
  const parts = s.split('.');
  // A single trailing dot is allowed by the URL parser ("127.0.0.1." is 127.0.0.1).
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length > 4) return -1;
  const values: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) v = parseInt(p.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(p)) v = Number(p);
    else return -1;
    if (!Number.isSafeInteger(v)) return -1;
    values.push(v);
  }
  const last = values.pop()!;
  for (const v of values) if (v > 255) return -1;
  if (last >= 256 ** (4 - values.length)) return -1;
  let addr = 0;
  for (const v of values) addr = addr * 256 + v;
  return addr * 256 ** (4 - values.length) + last;
}

function ipv4Text(v: number): string {
  return `${Math.floor(v / 16777216)}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`;
}

const canonScratch = new Uint16Array(8);

/**
 * canonicalIp turns any spelling of an IP address into one canonical text, so that two spellings of
 * one destination compare equal: IPv4 as dotted quad (from every inet_aton form), IPv6 in RFC 5952
 * form (lower case, longest zero run as `::`, zone dropped). IPv6 forms that carry an IPv4 address
 * become that IPv4 address: IPv4-mapped `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2) in any spelling
 * (`::ffff:7f00:1`), IPv4-compatible `::a.b.c.d` (§2.5.5.1, deprecated) and IPv4-translated
 * `::ffff:0:a.b.c.d` (RFC 2765). Brackets are accepted. Returns null for anything not an address.
 */
export function canonicalIp(text: string): string | null {
  let s = text;
  if (s.length > 2 && s.charCodeAt(0) === 91 /* [ */ && s.charCodeAt(s.length - 1) === 93) s = s.slice(1, -1);
  if (s.includes(':')) {
    const h = canonScratch;
    if (!parseIPv6Into(s, h)) return null;
    if (h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0) {
      const mapped = h[4] === 0 && h[5] === 0xffff;
      const translated = h[4] === 0xffff && h[5] === 0;
      const compatible = h[4] === 0 && h[5] === 0 && (h[6] !== 0 || h[7]! > 1); // not :: or ::1
      if (mapped || translated || compatible) return ipv4Text(h[6]! * 65536 + h[7]!);
    }
    return ipv6Text(h);
  }
  const v4 = parseIPv4(s);
  if (v4 >= 0) return s;
  const aton = parseInetAton(s);
  return aton >= 0 ? ipv4Text(aton) : null;
}

/** ipv6Text writes 8 hextets in RFC 5952 form. */
function ipv6Text(h: Uint16Array): string {
  let bestAt = -1;
  let bestLen = 1; // a single zero hextet is not shortened (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => Array.from(h.subarray(from, to), (x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}
