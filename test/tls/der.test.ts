import t from 'tap';
import { children, DerError, oidBytes, readElement, tlv } from '../../src/tls/der.js';

t.test('lengths are encoded in the shortest DER form', async (t) => {
  const cases: [number, string][] = [
    [0, '0400'],
    [127, '047f'],
    [128, '048180'],
    [255, '0481ff'],
    [256, '04820100'],
    [65535, '0482ffff'],
    [65536, '0483010000'],
  ];
  for (const [n, head] of cases) {
    const el = tlv(0x04, Buffer.alloc(n));
    t.equal(el.subarray(0, head.length / 2).toString('hex'), head, `${n} bytes`);
    t.equal(readElement(el).content.length, n, `${n} bytes read back`);
  }
});

t.test('object identifiers encode as X.690 says', async (t) => {
  const cases: [string, string][] = [
    ['1.2.840.113549.1.1.11', '2a864886f70d01010b'], // sha256WithRSAEncryption
    ['1.2.840.10045.4.3.2', '2a8648ce3d040302'], // ecdsa-with-SHA256
    ['2.5.29.30', '551d1e'], // nameConstraints
  ];
  for (const [oid, hex] of cases) t.equal(oidBytes(oid).toString('hex'), hex, oid);
});

t.test('what is not DER is refused, not misread', async (t) => {
  const bad: [string, string][] = [
    ['empty', ''],
    ['a lone tag', '30'],
    ['indefinite length (BER)', '3080'],
    ['length past the end', '3005010203'],
    ['five length bytes', '30850000000001'],
    ['multi-byte tag', '1f8101'],
  ];
  for (const [name, hex] of bad) t.throws(() => readElement(Buffer.from(hex, 'hex')), DerError, name);
  const seq = tlv(0x30, tlv(0x02, Buffer.from([1])), tlv(0x05, Buffer.alloc(0)));
  t.same(children(readElement(seq)).map((e) => e.tag), [0x02, 0x05]);
  t.throws(() => children(readElement(Buffer.from('3003020501', 'hex'))), DerError, 'a child running past its parent');
});
