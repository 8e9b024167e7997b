/**
 * der: the few DER (ITU-T X.690) pieces certificate code needs, on Buffers: writing one TLV and
 * walking the TLVs inside one. Values are read as bytes, never re-encoded, so a name or key taken
 * from one certificate lands in another exactly as it was.
 */

/** Tag numbers used here (X.690 §8.1.2; context tags as X.509 uses them). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  /** [0] EXPLICIT, constructed (the TBS version, NameConstraints' permittedSubtrees). */
  CTX0: 0xa0,
  /** [1] constructed (NameConstraints' excludedSubtrees). */
  CTX1: 0xa1,
  /** [3] EXPLICIT, constructed (the TBS extensions). */
  CTX3: 0xa3,
} as const;

/** tlv encodes one element with a definite length (X.690 §8.1.3). */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  const n = body.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else if (n < 0x100) head = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) head = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else head = Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([head, body]);
}

/** Element is one TLV inside a buffer: `raw` is the whole element, `content` its value. */
export interface Element {
  readonly tag: number;
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** DerError means the bytes are not the DER this code expects. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** readElement reads the element that starts at `offset`. Only single-byte tags occur in X.509. */
export function readElement(buf: Buffer, offset = 0): Element {
  if (offset + 2 > buf.length) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in certificates');
  let len = buf[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const bytes = len & 0x7f;
    // Indefinite lengths (0x80) are BER, not DER; more than 4 length bytes is never a certificate.
    if (bytes === 0 || bytes > 4 || start + bytes > buf.length) throw new DerError('bad length');
    len = 0;
    for (let i = 0; i < bytes; i++) len = len * 256 + buf[start + i]!;
    start += bytes;
  }
  const end = start + len;
  if (end > buf.length) throw new DerError('element runs past its container');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(start, end) };
}

/** children lists the elements inside a constructed element's content. */
export function children(el: Element): Element[] {
  const out: Element[] = [];
  for (let off = 0; off < el.content.length; ) {
    const c = readElement(el.content, off);
    out.push(c);
    off += c.raw.length;
  }
  return out;
}

/** oid encodes a dotted object identifier's content bytes (X.690 §8.19). */
export function oidBytes(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const tmp: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift((v & 0x7f) | 0x80);
    out.push(...tmp);
  }
  return Buffer.from(out);
}
