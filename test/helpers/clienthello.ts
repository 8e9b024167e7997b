/**
 * clienthello: the differential rig for src/proxy/clienthello.ts.
 *
 * - capture*: real ClientHellos from real clients (Node's tls.connect, `openssl s_client`, curl), caught
 *   by a plain TCP listener on loopback that keeps the first flight and hangs up;
 * - NodeOracle: Node's own TLS server (OpenSSL) judging the same bytes: the name its SNICallback gets,
 *   `no-sni` when it answers with a handshake record without calling SNICallback, else `rejected`;
 * - decode/encode and mutators (seeded): truncation, length fields, byte flips, extension shuffles and
 *   duplicates, server_name variants, record re-fragmentation and oversize padding.
 * The rig's own decoder is deliberately separate from the code under test and only ever reads the
 * well-formed hellos it captured.
 */
import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { hostName, peekClientHello, type ClientHelloPeek } from '../../src/proxy/clienthello.js';
import { selfSigned } from './tls.js';
import { Rng } from './rng.js';

// ---------------------------------------------------------------- capture

/** Captured is one real client's first flight and who sent it. */
export interface Captured {
  readonly label: string;
  readonly bytes: Buffer;
  /** The server name the client was asked to send (null: none). */
  readonly servername: string | null;
}

/** withCatcher runs `start(port)` against a listener that keeps the first flight of one connection. */
async function withCatcher(start: (port: number) => { stop(): void }): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      let client: { stop(): void } | null = null;
      const giveUp = setTimeout(() => reject(new Error('no client connected within 10 s')), 10_000);
      server.once('connection', (s) => {
        const chunks: Buffer[] = [];
        let idle: NodeJS.Timeout | null = null;
        s.on('error', () => undefined);
        s.on('data', (d: Buffer) => {
          chunks.push(d);
          // A client sends its ClientHello and waits for the server: 200 ms of quiet ends the flight.
          if (idle) clearTimeout(idle);
          idle = setTimeout(() => {
            clearTimeout(giveUp);
            s.destroy();
            client?.stop();
            resolve(Buffer.concat(chunks));
          }, 200);
        });
      });
      client = start(port);
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** captureNode is the ClientHello Node's tls.connect sends with these options. */
export function captureNode(opts: tls.ConnectionOptions): Promise<Buffer> {
  return withCatcher((port) => {
    const s = tls.connect({ ...opts, host: '127.0.0.1', port });
    s.on('error', () => undefined);
    return { stop: () => s.destroy() };
  });
}

/** captureCommand is the ClientHello a command-line client sends (`{port}` in argv is replaced). */
export function captureCommand(argv: string[]): Promise<Buffer> {
  return withCatcher((port) => {
    const args = argv.map((a) => a.replaceAll('{port}', String(port)));
    const child = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
    child.on('error', () => undefined);
    return { stop: () => child.kill('SIGKILL') };
  });
}

/** captureCorpus collects ClientHellos from Node with several options, openssl s_client and curl. */
export async function captureCorpus(): Promise<Captured[]> {
  const long63 = `${'a'.repeat(63)}.example`;
  const long253 = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(57)}.test`;
  const node: [string, tls.ConnectionOptions, string | null][] = [
    ['node default', { servername: 'example.com' }, 'example.com'],
    ['node mixed case', { servername: 'Example.COM' }, 'Example.COM'],
    ['node hyphen and underscore', { servername: 'a-b.c_d.example.org' }, 'a-b.c_d.example.org'],
    ['node 63-byte label', { servername: long63 }, long63],
    ['node 253-byte name', { servername: long253 }, long253],
    ['node no servername', { servername: '' }, null],
    ['node TLS 1.2 only', { servername: 'tls12.example', maxVersion: 'TLSv1.2' }, 'tls12.example'],
    ['node TLS 1.3 only', { servername: 'tls13.example', minVersion: 'TLSv1.3' }, 'tls13.example'],
    ['node ALPN', { servername: 'alpn.example', ALPNProtocols: ['h2', 'http/1.1'] }, 'alpn.example'],
    ['node one cipher', { servername: 'cipher.example', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }, 'cipher.example'],
  ];
  const out: Captured[] = [];
  for (const [label, opts, servername] of node) out.push({ label, bytes: await captureNode(opts), servername });
  const commands: [string, string[], string | null][] = [
    ['openssl s_client', ['openssl', 's_client', '-connect', '127.0.0.1:{port}', '-servername', 'openssl.example.net'], 'openssl.example.net'],
    ['openssl s_client -noservername', ['openssl', 's_client', '-connect', '127.0.0.1:{port}', '-noservername'], null],
    ['openssl s_client -tls1_2', ['openssl', 's_client', '-connect', '127.0.0.1:{port}', '-tls1_2', '-servername', 'o12.example.net'], 'o12.example.net'],
    ['openssl s_client -tls1_3 X25519', ['openssl', 's_client', '-connect', '127.0.0.1:{port}', '-tls1_3', '-groups', 'X25519', '-servername', 'o13.example.net'], 'o13.example.net'],
    ['curl', ['curl', '-sk', '--max-time', '5', '--resolve', 'curl.example.net:{port}:127.0.0.1', 'https://curl.example.net:{port}/'], 'curl.example.net'],
    ['curl TLS 1.2', ['curl', '-sk', '--max-time', '5', '--tlsv1.2', '--tls-max', '1.2', '--resolve', 'c12.example.net:{port}:127.0.0.1', 'https://c12.example.net:{port}/'], 'c12.example.net'],
    ['curl by IP (no SNI)', ['curl', '-sk', '--max-time', '5', 'https://127.0.0.1:{port}/'], null],
  ];
  for (const [label, argv, servername] of commands) out.push({ label, bytes: await captureCommand(argv), servername });
  return out;
}

// ---------------------------------------------------------------- Node's verdict

/** NodeVerdict is what Node's TLS server made of some bytes. */
export type NodeVerdict = { readonly kind: 'sni'; readonly name: string } | { readonly kind: 'no-sni' } | { readonly kind: 'rejected' };

/** Judged is the server side of one connection: the name its SNICallback got, and when it was over. */
interface Judged {
  name: string | undefined;
  readonly closed: Promise<void>;
}

/** SETTLE_MS caps the wait for the server side of a connection to be seen and closed. */
const SETTLE_MS = 5_000;

/**
 * NodeOracle is Node's TLS server (a server-side tls.TLSSocket on each accepted loopback connection)
 * judging ClientHello bytes, many connections at once. Each connection's SNICallback writes into that
 * connection's own record, found by the client's address and port; every judged connection comes from
 * a loopback source address of its own (127.1.0.1, 127.1.0.2, ...), so no two connections of a run share
 * that key, even when the server accepts one late. A verdict is read once the server side has closed.
 */
export class NodeOracle {
  /** Server sides by the client's `address:port`. */
  private readonly byPeer = new Map<string, Judged>();
  private sources = 0;
  private constructor(
    private readonly server: net.Server,
    private readonly port: number,
  ) {}

  static async start(): Promise<NodeOracle> {
    const { key, cert } = selfSigned(['oracle.test']);
    const secureContext = tls.createSecureContext({ key, cert });
    let oracle: NodeOracle | null = null;
    const server = net.createServer((raw) => {
      let closed!: () => void;
      const rec: Judged = { name: undefined, closed: new Promise<void>((r) => (closed = r)) };
      raw.once('close', () => closed());
      oracle!.byPeer.set(`${raw.remoteAddress}:${raw.remotePort}`, rec);
      const s = new tls.TLSSocket(raw, {
        isServer: true,
        secureContext,
        SNICallback: (name, cb) => {
          rec.name = name;
          cb(null, secureContext);
        },
      });
      s.on('error', () => raw.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    oracle = new NodeOracle(server, (server.address() as AddressInfo).port);
    return oracle;
  }

  /** serverSide waits for the server side of the connection from this peer to be closed, and takes it. */
  private async serverSide(peer: string): Promise<Judged | undefined> {
    const deadline = Date.now() + SETTLE_MS;
    while (Date.now() < deadline) {
      const rec = this.byPeer.get(peer);
      if (rec !== undefined) {
        await Promise.race([rec.closed, new Promise((r) => setTimeout(r, SETTLE_MS))]);
        this.byPeer.delete(peer);
        return rec;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return undefined;
  }

  /** judge sends the bytes on a fresh connection and watches the answer for up to `waitMs`. */
  judge(bytes: Buffer, waitMs = 300): Promise<NodeVerdict> {
    return new Promise((resolve) => {
      // 127.1.0.1 up to 127.126.255.254, then around again (by then those connections are long settled).
      const n = this.sources++ % (126 * 256 * 254);
      const source = `127.${1 + Math.floor(n / (256 * 254))}.${Math.floor(n / 254) % 256}.${1 + (n % 254)}`;
      const c = net.connect({ port: this.port, host: '127.0.0.1', localAddress: source });
      let answered = false;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const port = c.localPort;
        c.destroy();
        if (port === undefined) return resolve({ kind: 'rejected' });
        void this.serverSide(`${source}:${port}`).then((rec) => {
          const name = rec?.name;
          resolve(name !== undefined ? { kind: 'sni', name } : answered ? { kind: 'no-sni' } : { kind: 'rejected' });
        });
      };
      const timer = setTimeout(finish, waitMs);
      c.on('error', finish);
      c.on('close', finish);
      c.on('data', (d: Buffer) => {
        // A handshake record back (ServerHello or HelloRetryRequest) took the ClientHello; an alert did not.
        answered = d[0] === 22;
        finish();
      });
      c.on('connect', () => c.write(bytes));
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** expected is what peekClientHello must answer for bytes Node's server took (null: Node refused; anything goes). */
export function expected(v: NodeVerdict): string | null {
  if (v.kind === 'rejected') return null;
  if (v.kind === 'no-sni') return 'no-sni';
  const name = hostName(Buffer.from(v.name, 'latin1'));
  return name === null ? 'bad-sni' : `sni:${name}`;
}

/** show writes a peek answer in the same form as expected(). */
export function show(p: ClientHelloPeek): string {
  return p.kind === 'sni' ? `sni:${p.name}` : p.kind === 'not-tls' ? `not-tls:${p.reason}` : p.kind;
}

// ---------------------------------------------------------------- structure

/** Hello is a decoded ClientHello body. */
export interface Hello {
  version: number;
  random: Buffer;
  sessionId: Buffer;
  ciphers: Buffer;
  compression: Buffer;
  extensions: { type: number; data: Buffer }[] | null;
}

/** unrecord joins the handshake fragments of a run of well-formed records. */
export function unrecord(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; off + 5 <= bytes.length; ) {
    const len = bytes.readUInt16BE(off + 3);
    parts.push(bytes.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  return Buffer.concat(parts);
}

/** decode reads the ClientHello of captured records (the rig's own reader; it trusts its input). */
export function decode(records: Buffer): Hello {
  const hs = unrecord(records);
  const body = hs.subarray(4, 4 + hs.readUIntBE(1, 3));
  let p = 0;
  const take = (n: number) => body.subarray(p, (p += n));
  const version = body.readUInt16BE(0);
  p = 2;
  const random = take(32);
  const sessionId = take(body[p++]!);
  const ciphers = take(body.readUInt16BE((p += 2) - 2));
  const compression = take(body[p++]!);
  if (p === body.length) return { version, random, sessionId, ciphers, compression, extensions: null };
  const end = p + 2 + body.readUInt16BE(p);
  p += 2;
  const extensions: { type: number; data: Buffer }[] = [];
  while (p < end) {
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    p += 4;
    extensions.push({ type, data: take(len) });
  }
  return { version, random, sessionId, ciphers, compression, extensions };
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 255, n & 255]);

/** encode writes a Hello as a handshake message (type 1, uint24 length). */
export function encode(h: Hello): Buffer {
  const parts = [u16(h.version), h.random, Buffer.from([h.sessionId.length]), h.sessionId, u16(h.ciphers.length), h.ciphers, Buffer.from([h.compression.length]), h.compression];
  if (h.extensions !== null) {
    const ext = Buffer.concat(h.extensions.flatMap((e) => [u16(e.type), u16(e.data.length), e.data]));
    parts.push(u16(ext.length), ext);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 255, body.length & 255]), body]);
}

/** record wraps handshake bytes in records of the given fragment sizes (after the list, the last non-zero size repeats). */
export function record(hs: Buffer, sizes: number[] = [16384], version = 0x0301): Buffer {
  const out: Buffer[] = [];
  const repeat = Math.max(1, sizes[sizes.length - 1] ?? 1);
  let off = 0;
  let i = 0;
  do {
    const n = Math.min(i < sizes.length ? sizes[i]! : repeat, hs.length - off);
    out.push(Buffer.from([22, version >> 8, version & 255]), u16(n), hs.subarray(off, off + n));
    off += n;
    i++;
  } while (off < hs.length);
  return Buffer.concat(out);
}

/** sniExtension is a server_name extension's data for one host_name entry of raw bytes. */
export function sniExtension(name: Buffer, nameType = 0): Buffer {
  const entry = Buffer.concat([Buffer.from([nameType]), u16(name.length), name]);
  return Buffer.concat([u16(entry.length), entry]);
}

// ---------------------------------------------------------------- mutation

export { Rng };

/** SNI_VARIANTS are server names on both sides of the host-name rules, as raw bytes. */
const SNI_VARIANTS: Buffer[] = [
  'UPPER.Example.COM',
  'trailing.dot.',
  '127.0.0.1',
  '127.1',
  '0x7f.1',
  '1.2.3.4.5',
  '999',
  'under_score.example',
  '-lead.example',
  'trail-.example',
  'a..b',
  '.',
  'sp ace.example',
  `${'x'.repeat(64)}.example`,
  `${'y'.repeat(63)}.example`,
  `${'z'.repeat(60)}.${'z'.repeat(60)}.${'z'.repeat(60)}.${'z'.repeat(62)}.e`,
  `${'z'.repeat(60)}.${'z'.repeat(60)}.${'z'.repeat(60)}.${'z'.repeat(63)}.ee`,
  'x',
  '[::1]',
].map((s) => Buffer.from(s, 'latin1')).concat([Buffer.from('a\0b.example', 'latin1'), Buffer.from('caf\xe9.example', 'latin1'), Buffer.alloc(0), Buffer.alloc(256, 0x61), Buffer.alloc(300, 0x61)]);

type Mutator = (rng: Rng, h: Hello, records: Buffer) => Buffer;

const withHello = (f: (rng: Rng, h: Hello) => void): Mutator => (rng, h) => {
  const copy: Hello = { ...h, extensions: h.extensions === null ? null : h.extensions.map((e) => ({ ...e })) };
  f(rng, copy);
  return record(encode(copy));
};

/** lengthFields lists [offset, width] of every length field in records made by record(encode(h)) with one record. */
function lengthFields(h: Hello): [number, number][] {
  const fields: [number, number][] = [[3, 2], [6, 3]];
  let p = 5 + 4 + 2 + 32;
  fields.push([p, 1]);
  p += 1 + h.sessionId.length;
  fields.push([p, 2]);
  p += 2 + h.ciphers.length;
  fields.push([p, 1]);
  p += 1 + h.compression.length;
  if (h.extensions !== null) {
    fields.push([p, 2]);
    p += 2;
    for (const e of h.extensions) {
      fields.push([p + 2, 2]);
      if (e.type === 0 && e.data.length >= 5) fields.push([p + 4, 2], [p + 7, 2]);
      p += 4 + e.data.length;
    }
  }
  return fields;
}

const MUTATORS: Record<string, Mutator> = {
  truncate: (rng, _h, r) => r.subarray(0, rng.int(r.length)),
  flipBytes: (rng, _h, r) => {
    const out = Buffer.from(r);
    for (let n = 1 + rng.int(3); n > 0; n--) {
      const i = rng.int(out.length);
      out[i] = out[i]! ^ (1 + rng.int(255));
    }
    return out;
  },
  lengthField: (rng, h) => {
    const out = Buffer.from(record(encode(h)));
    const [at, width] = rng.pick(lengthFields(h));
    const old = out.readUIntBE(at, width);
    const max = 2 ** (8 * width) - 1;
    const v = rng.pick([0, 1, old - 1, old + 1, old + 2, old - 4, max, rng.int(max + 1)]);
    out.writeUIntBE(Math.max(0, Math.min(max, v)), at, width);
    return out;
  },
  shuffleExtensions: withHello((rng, h) => {
    if (h.extensions === null) return;
    // pre_shared_key (41) must stay last (RFC 8446 §4.2.11); everything else may go anywhere.
    const psk = h.extensions.filter((e) => e.type === 41);
    const rest = h.extensions.filter((e) => e.type !== 41);
    for (let i = rest.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [rest[i], rest[j]] = [rest[j]!, rest[i]!];
    }
    h.extensions = [...rest, ...psk];
  }),
  duplicateExtension: withHello((rng, h) => {
    if (h.extensions === null || h.extensions.length === 0) return;
    const e = rng.pick(h.extensions);
    h.extensions.splice(rng.int(h.extensions.length + 1), 0, { ...e });
  }),
  dropExtension: withHello((rng, h) => {
    if (h.extensions === null || h.extensions.length === 0) return;
    h.extensions.splice(rng.int(h.extensions.length), 1);
  }),
  unknownExtension: withHello((rng, h) => {
    h.extensions ??= [];
    h.extensions.splice(rng.int(h.extensions.length + 1), 0, { type: 0x4000 + rng.int(0x1000), data: Buffer.alloc(rng.int(40), 7) });
  }),
  sniName: withHello((rng, h) => {
    h.extensions ??= [];
    const data = sniExtension(rng.pick(SNI_VARIANTS));
    const at = h.extensions.findIndex((e) => e.type === 0);
    if (at >= 0) h.extensions[at] = { type: 0, data };
    else h.extensions.unshift({ type: 0, data });
  }),
  sniShape: withHello((rng, h) => {
    h.extensions ??= [];
    const name = Buffer.from('shape.example');
    const one = sniExtension(name).subarray(2);
    const shapes = [
      sniExtension(name, 1), // name_type other than host_name
      Buffer.concat([u16(one.length * 2), one, one]), // two entries
      Buffer.alloc(0), // empty extension
      u16(0), // empty list
      Buffer.concat([sniExtension(name), Buffer.from([0])]), // trailing byte
    ];
    const data = rng.pick(shapes);
    const at = h.extensions.findIndex((e) => e.type === 0);
    if (at >= 0) h.extensions[at] = { type: 0, data };
    else h.extensions.push({ type: 0, data });
  }),
  noExtensions: withHello((_rng, h) => {
    h.extensions = null;
  }),
  refragment: (rng, h) => {
    const sizes: number[] = Array.from({ length: 1 + rng.int(8) }, () => rng.pick([0, 1, 2, 3, 5, 40, 100, 1 + rng.int(600)]));
    return record(encode(h), sizes, rng.pick([0x0300, 0x0301, 0x0303]));
  },
  oversize: withHello((rng, h) => {
    h.extensions ??= [];
    // The padding extension (RFC 7685) grows the hello past 16 KiB and across records.
    h.extensions.push({ type: 21, data: Buffer.alloc(rng.pick([15_000, 16_500, 20_000, 40_000, 65_000])) });
  }),
  trailingData: (rng, h) => Buffer.concat([record(encode(h)), rng.pick([Buffer.from([23, 3, 3, 0, 1, 0]), Buffer.from('GET / HTTP/1.1\r\n'), record(encode(h))])]),
};

/** MUTATOR_NAMES is every mutator, for a fuzz report. */
export const MUTATOR_NAMES = Object.keys(MUTATORS);

/** mutate applies one to three mutators to a captured hello; oversize ones are wrapped in several records. */
export function mutate(rng: Rng, seed: Captured): { input: Buffer; how: string[] } {
  let h = decode(seed.bytes);
  let bytes = seed.bytes;
  const how: string[] = [];
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const name = rng.pick(MUTATOR_NAMES);
    how.push(name);
    bytes = MUTATORS[name]!(rng, h, bytes);
    try {
      // Later mutators work on the structure when it still decodes; otherwise stop mutating.
      const d = decode(bytes);
      if (encode(d).length !== unrecord(bytes).length) break;
      h = d;
    } catch {
      // The bytes no longer decode: they are the input as they are.
      break;
    }
  }
  return { input: bytes, how };
}

/** peekAll is peekClientHello with a bound high enough that the oversize cases are judged on content. */
export function peekAll(bytes: Buffer): ClientHelloPeek {
  return peekClientHello(bytes, 1 << 20);
}

/**
 * splitsAgree checks the TCP-read property: every prefix answers `more` or the same final answer as the
 * whole input. Returns the first prefix length that breaks it, or -1.
 */
export function splitsAgree(bytes: Buffer, cuts: Iterable<number>): number {
  const whole = show(peekAll(bytes));
  for (const n of cuts) {
    const part = show(peekAll(bytes.subarray(0, n)));
    if (part !== 'more' && part !== whole) return n;
  }
  return -1;
}

// ---------------------------------------------------------------- the fuzz loop

/** FuzzFailure is one input on which peekClientHello broke a property. */
export interface FuzzFailure {
  readonly seedLabel: string;
  readonly how: string[];
  readonly input: string;
  readonly problem: string;
}

/** FuzzReport counts what Node's server made of the inputs, and lists the failures. */
export interface FuzzReport {
  cases: number;
  readonly node: Record<NodeVerdict['kind'], number>;
  readonly ours: Record<string, number>;
  readonly failures: FuzzFailure[];
}

/**
 * fuzz mutates the corpus `count` times from `seed` and checks each input: peekClientHello never throws,
 * agrees with Node's server wherever that server took the hello up to SNI, answers the same final
 * answer for every prefix (TCP reads), and under the default bound answers the same or `too-large`.
 */
export async function fuzz(corpus: readonly Captured[], oracle: NodeOracle, seed: number, count: number, parallel = 32): Promise<FuzzReport> {
  const rng = new Rng(seed);
  const report: FuzzReport = { cases: 0, node: { sni: 0, 'no-sni': 0, rejected: 0 }, ours: {}, failures: [] };
  for (let done = 0; done < count; ) {
    const batch = Array.from({ length: Math.min(parallel, count - done) }, () => {
      const base = rng.pick(corpus);
      const m = mutate(rng, base);
      const cuts = Array.from({ length: 6 }, () => rng.int(m.input.length + 1));
      return { base, ...m, cuts };
    });
    done += batch.length;
    await Promise.all(
      batch.map(async ({ base, input, how, cuts }) => {
        const fail = (problem: string) => report.failures.push({ seedLabel: base.label, how, input: input.toString('hex'), problem });
        let ours: string;
        try {
          ours = show(peekAll(input));
          const bounded = show(peekClientHello(input));
          if (bounded !== ours && bounded !== 'not-tls:too-large') fail(`default bound answered ${bounded}, unbounded ${ours}`);
          const bad = splitsAgree(input, cuts);
          if (bad >= 0) fail(`the first ${bad} bytes answered ${show(peekAll(input.subarray(0, bad)))}, the whole input ${ours}`);
        } catch (err) {
          fail(`threw ${(err as Error).stack}`);
          return;
        }
        report.ours[ours] = (report.ours[ours] ?? 0) + 1;
        const verdict = await oracle.judge(input);
        report.node[verdict.kind]++;
        const want = expected(verdict);
        if (want !== null && want !== ours) fail(`Node's server: ${verdict.kind === 'sni' ? JSON.stringify(verdict.name) : verdict.kind}, so ${want}; peekClientHello: ${ours}`);
      }),
    );
    report.cases = done;
  }
  return report;
}
