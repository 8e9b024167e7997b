/**
 * clienthello: what a transparent TLS listener needs from the first bytes of a connection, read without
 * consuming them (the caller keeps the bytes and replays them to the origin or to its own TLS server).
 *
 *   Client -> [TLSPlaintext records: handshake(22) ... ClientHello{ ..., extensions{ server_name } }] -> peekClientHello()
 *
 * peekClientHello(bytesSoFar) answers one of:
 * - `more`: the ClientHello is not complete yet; call again with more bytes;
 * - `not-tls`: these bytes are not a TLS ClientHello (with a stable reason);
 * - `no-sni`: a well-formed ClientHello without a server_name extension;
 * - `bad-sni`: a server_name that is not a host name we would dial (RFC 6066 §3: ASCII, no trailing
 *   dot, no IP literal);
 * - `sni`: the host name, lower-cased.
 *
 * Formats: TLSPlaintext (RFC 8446 §5.1; record fragments at most 2^14 bytes, one handshake message may
 * span several records), ClientHello (RFC 8446 §4.1.2, the same layout as RFC 5246 §7.4.1.2), and the
 * server_name extension (RFC 6066 §3). Where the RFCs leave room, this follows what OpenSSL (Node's TLS
 * server) accepts, so that a ClientHello Node's server takes, this takes the same way; the tests check
 * that against a real tls.Server:
 * - the extensions block must fill the rest of the ClientHello exactly, and each extension its share;
 * - server_name appears at most once, holds exactly one entry, of type host_name (0);
 * - record versions only need major version 3, and empty records are allowed (OpenSSL allows a few);
 * - an empty host name counts as no server_name.
 * Bounded: at most `maxBytes` (default 16 KiB) of records are read, and anything that needs more is
 * `too-large`. The work is linear in the bytes given, with no loop that does not consume input.
 */
import { parseInetAton } from '../config/ip.js';

/** DEFAULT_MAX_CLIENT_HELLO_BYTES bounds the records read for one ClientHello (headers included). */
export const DEFAULT_MAX_CLIENT_HELLO_BYTES = 16 * 1024;

/** NotTlsReason says why bytes are not a ClientHello we take, as a stable code for the log. */
export type NotTlsReason =
  /** The first byte is not a TLS handshake record (e.g. a plain HTTP request). */
  | 'not-handshake'
  /** A record header is not TLS: another content type mid-hello, major version not 3, or over 2^14 bytes. */
  | 'bad-record'
  /** The first handshake message is not a ClientHello. */
  | 'not-client-hello'
  /** A length inside the ClientHello does not add up, or server_name breaks RFC 6066's shape. */
  | 'malformed'
  /** The ClientHello needs more than maxBytes of records. */
  | 'too-large';

/** ClientHelloPeek is the answer for the bytes seen so far. */
export type ClientHelloPeek =
  | { readonly kind: 'more' }
  | { readonly kind: 'not-tls'; readonly reason: NotTlsReason }
  | { readonly kind: 'no-sni' }
  | { readonly kind: 'bad-sni' }
  | { readonly kind: 'sni'; readonly name: string };

const MORE: ClientHelloPeek = Object.freeze({ kind: 'more' });
const NO_SNI: ClientHelloPeek = Object.freeze({ kind: 'no-sni' });
const BAD_SNI: ClientHelloPeek = Object.freeze({ kind: 'bad-sni' });
const notTls = (reason: NotTlsReason): ClientHelloPeek => ({ kind: 'not-tls', reason });

const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const RECORD_HEADER = 5;
/** MAX_FRAGMENT is 2^14, the largest TLSPlaintext fragment (RFC 8446 §5.1). */
const MAX_FRAGMENT = 16384;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;

/** peekClientHello reads the ClientHello at the start of `buf` (never modifying it). */
export function peekClientHello(buf: Uint8Array, maxBytes = DEFAULT_MAX_CLIENT_HELLO_BYTES): ClientHelloPeek {
  if (buf.length === 0) return MORE;
  if (buf[0] !== CONTENT_HANDSHAKE) return notTls('not-handshake');

  // Gather the handshake bytes from consecutive records, the last one possibly incomplete.
  const fragments: Uint8Array[] = [];
  let have = 0; // handshake bytes gathered
  let want = -1; // handshake bytes the ClientHello needs (header + body), once its header is known
  let off = 0;
  while (want < 0 || have < want) {
    if (off >= maxBytes) return notTls('too-large');
    if (buf.length - off < RECORD_HEADER) {
      if (off < buf.length && buf[off] !== CONTENT_HANDSHAKE) return notTls('bad-record');
      if (off + 1 < buf.length && buf[off + 1] !== 3) return notTls('bad-record');
      return MORE;
    }
    const len = (buf[off + 3]! << 8) | buf[off + 4]!;
    if (buf[off] !== CONTENT_HANDSHAKE || buf[off + 1] !== 3 || len > MAX_FRAGMENT) return notTls('bad-record');
    const start = off + RECORD_HEADER;
    const end = Math.min(start + len, buf.length);
    fragments.push(buf.subarray(start, end));
    have += end - start;
    if (want < 0 && have >= 4) {
      const head = gather(fragments, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return notTls('not-client-hello');
      want = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      // Each fragment costs a 5-byte header too, so a message this long cannot fit.
      if (want + RECORD_HEADER > maxBytes) return notTls('too-large');
    } else if (want < 0 && have >= 1 && fragments.find((f) => f.length > 0)![0] !== HANDSHAKE_CLIENT_HELLO) {
      return notTls('not-client-hello');
    }
    if (end < start + len) {
      // The last record is still arriving: done if it already holds the whole ClientHello; too large
      // if the ClientHello would end past the bound (what follows it in the record does not count).
      if (want >= 0 && have >= want) break;
      if (want < 0) return MORE;
      const helloEnd = start + (want - (have - (end - start)));
      return helloEnd > maxBytes ? notTls('too-large') : MORE;
    }
    off = start + len;
  }
  const hello = gather(fragments, want);
  return parseClientHello(hello.subarray(4));
}

/** gather copies the first n bytes of the fragments into one buffer. */
function gather(fragments: Uint8Array[], n: number): Uint8Array {
  if (fragments.length > 0 && fragments[0]!.length >= n) return fragments[0]!.subarray(0, n);
  const out = new Uint8Array(n);
  let at = 0;
  for (const f of fragments) {
    if (at >= n) break;
    const take = Math.min(f.length, n - at);
    out.set(f.subarray(0, take), at);
    at += take;
  }
  return out;
}

/**
 * parseClientHello walks ClientHello.body (RFC 8446 §4.1.2):
 *   legacy_version(2) random(32) legacy_session_id<0..32> cipher_suites<2..2^16-2>
 *   legacy_compression_methods<1..2^8-1> extensions<8..2^16-1> (absent in old clients)
 */
function parseClientHello(b: Uint8Array): ClientHelloPeek {
  let p = 2 + 32;
  if (p + 1 > b.length) return notTls('malformed');
  const sessionIdLen = b[p]!;
  if (sessionIdLen > 32) return notTls('malformed');
  p += 1 + sessionIdLen;
  if (p + 2 > b.length) return notTls('malformed');
  p += 2 + ((b[p]! << 8) | b[p + 1]!);
  if (p + 1 > b.length) return notTls('malformed');
  p += 1 + b[p]!;
  if (p > b.length) return notTls('malformed');
  // A ClientHello may end after compression_methods: then it has no extensions, so no SNI.
  if (p === b.length) return NO_SNI;
  if (p + 2 > b.length) return notTls('malformed');
  const extEnd = p + 2 + ((b[p]! << 8) | b[p + 1]!);
  if (extEnd !== b.length) return notTls('malformed');
  p += 2;
  let sni: ClientHelloPeek = NO_SNI;
  let seen = false;
  while (p < extEnd) {
    if (p + 4 > extEnd) return notTls('malformed');
    const type = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
    if (p + len > extEnd) return notTls('malformed');
    if (type === EXT_SERVER_NAME) {
      // RFC 8446 §4.2: no extension type appears twice.
      if (seen) return notTls('malformed');
      seen = true;
      const r = parseServerName(b.subarray(p, p + len));
      if (r === null) return notTls('malformed');
      sni = r;
    }
    p += len;
  }
  return sni;
}

/**
 * parseServerName reads the server_name extension's data (RFC 6066 §3):
 *   ServerNameList { ServerName server_name_list<1..2^16-1> }, ServerName { name_type(1), HostName<1..2^16-1> }
 * One entry only, of type host_name: RFC 6066 forbids two of a type and defines no other type (and
 * OpenSSL takes no other shape). null: malformed.
 */
function parseServerName(d: Uint8Array): ClientHelloPeek | null {
  if (d.length < 2 || ((d[0]! << 8) | d[1]!) !== d.length - 2 || d.length === 2) return null;
  if (d.length < 5 || d[2] !== NAME_TYPE_HOST_NAME) return null;
  const nameLen = (d[3]! << 8) | d[4]!;
  if (5 + nameLen !== d.length) return null;
  // An empty HostName breaks RFC 6066's <1..2^16-1>, but OpenSSL takes it as no name at all (and so
  // Node's server goes on without SNI): answer the same, which callers treat like a missing SNI.
  if (nameLen === 0) return NO_SNI;
  const name = hostName(d.subarray(5));
  return name === null ? BAD_SNI : { kind: 'sni', name };
}

/**
 * hostName returns the SNI bytes as a lower-case host name, or null when they are not one we would
 * dial: RFC 6066 §3 wants the ASCII host name without a trailing dot and no IP literals; labels are
 * 1-63 letters, digits, hyphens (not first or last) or underscores (found in real names), 253 in all.
 * A last label of digits only, or any inet_aton(3) spelling (`127.1`, `0x7f.1`), is an IP literal.
 */
export function hostName(bytes: Uint8Array): string | null {
  if (bytes.length === 0 || bytes.length > 253) return null;
  let labelStart = 0;
  let digitsOnly = true;
  for (let i = 0; i <= bytes.length; i++) {
    const c = i < bytes.length ? bytes[i]! : 0x2e;
    if (c === 0x2e /* . */) {
      const n = i - labelStart;
      if (n === 0 || n > 63 || bytes[labelStart] === 0x2d || bytes[i - 1] === 0x2d) return null;
      if (i < bytes.length) {
        labelStart = i + 1;
        digitsOnly = true;
      }
      continue;
    }
    const digit = c >= 0x30 && c <= 0x39;
    const ok = digit || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f;
    if (!ok) return null;
    if (!digit) digitsOnly = false;
  }
  if (digitsOnly) return null;
  const name = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1').toLowerCase();
  return parseInetAton(name) >= 0 ? null : name;
}
