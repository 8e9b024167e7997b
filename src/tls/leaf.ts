/**
 * leaf: per-host leaf certificates for TLS inspection, signed by Tollgate's CA.
 *
 *   Client --ClientHello (SNI host)--> terminator --leaf(host)--> cached? --no--> mint (one per host at a time)
 *
 * One leaf key pair is made when the minter is built, with Node's crypto (making one per host in
 * JavaScript takes seconds); every leaf certifies that key. A leaf's certificate is assembled with
 * node-forge (x509.ts) and its TBS signed by Node's crypto in the thread pool, so the event loop is
 * not held while the CA key signs. Leaves live in an LRU keyed by host, bounded, and leave it a
 * margin before their certificate expires; concurrent first requests for one host share one mint.
 */
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { CertificateAuthority } from './ca.js';
import { TAG, tlv } from './der.js';
import { finishCertificate, keyIdentifier, prepareCertificate, signatureAlgorithm, toPem, type SignatureAlgorithm } from './x509.js';

/** LEAF_KEY_TYPES: ECDSA P-256 makes the cheapest server handshakes; RSA-2048 reaches the oldest clients. */
export const LEAF_KEY_TYPES = ['ecdsa-p256', 'rsa2048'] as const;
export type LeafKeyType = (typeof LEAF_KEY_TYPES)[number];

/**
 * MAX_LEAF_VALIDITY_DAYS: browsers refuse leaves valid for more than 398 days (Apple since 2020,
 * Chrome and Mozilla alike); the day leaves are backdated counts, so 396 + 1 stays inside 397.
 */
export const MAX_LEAF_VALIDITY_DAYS = 396;

const DAY_MS = 86_400_000;
/** BACKDATE_MS: leaves start a day early, for clients whose clock runs behind. */
const BACKDATE_MS = DAY_MS;

/** LeafMinterOptions configure one minter for one CA. */
export interface LeafMinterOptions {
  readonly ca: CertificateAuthority;
  readonly keyType?: LeafKeyType;
  /** validityDays: how long a leaf is valid from now (default 30, at most MAX_LEAF_VALIDITY_DAYS). */
  readonly validityDays?: number;
  /** cacheSize bounds the LRU (hosts); default 4096. */
  readonly cacheSize?: number;
  /** now is the clock, injected by tests; default Date.now. */
  readonly now?: () => number;
  /** contextOptions are added to every leaf's SecureContext (e.g. minVersion, ciphers). */
  readonly contextOptions?: SecureContextOptions;
}

/** Leaf is one host's certificate and the SecureContext that serves it. */
export interface Leaf {
  readonly host: string;
  readonly certDer: Buffer;
  readonly certPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** renewAt is when the cache drops this leaf, a margin before notAfter. */
  readonly renewAt: number;
  readonly context: SecureContext;
}

/** LeafError: a host a certificate cannot be made for. */
export class LeafError extends Error {
  readonly code = 'LEAF_BAD_HOST';
  constructor(message: string) {
    super(message);
    this.name = 'LeafError';
  }
}

/** MinterStats count what the minter did, for /metrics and the benchmark. */
export interface MinterStats {
  mints: number;
  hits: number;
  /** joined: first requests that waited for a mint another request had started. */
  joined: number;
  failures: number;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * leafHost normalises a host from SNI or a CONNECT line (case, one trailing dot, IPv6 brackets) and
 * refuses what is neither a DNS name nor an IP literal.
 */
export function leafHost(raw: string): { host: string; ip: boolean } {
  let h = raw.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (isIP(h) !== 0) return { host: h, ip: true };
  if (h.length === 0 || h.length > 253 || !h.split('.').every((l) => LABEL.test(l))) {
    throw new LeafError(`"${raw.slice(0, 300)}" is not a host name a certificate can name`);
  }
  return { host: h, ip: false };
}

/** LeafMinter mints, caches and serves leaves; build one per CA and keep it across activations. */
export class LeafMinter {
  readonly stats: MinterStats = { mints: 0, hits: 0, joined: 0, failures: 0 };
  readonly #ca: CertificateAuthority;
  readonly #now: () => number;
  readonly #lifetimeMs: number;
  readonly #marginMs: number;
  readonly #publicKey: KeyObject;
  readonly #keyPem: string;
  readonly #algorithm: SignatureAlgorithm;
  readonly #fixedExtensions: readonly object[];
  readonly #contextOptions: SecureContextOptions;
  readonly #cache: LRUCache<string, Leaf>;
  readonly #inflight = new Map<string, Promise<Leaf>>();

  constructor(opts: LeafMinterOptions) {
    const days = opts.validityDays ?? 30;
    if (!(days >= 1 && days <= MAX_LEAF_VALIDITY_DAYS)) throw new RangeError(`leaf validity must be 1-${MAX_LEAF_VALIDITY_DAYS} days`);
    this.#ca = opts.ca;
    this.#now = opts.now ?? Date.now;
    this.#lifetimeMs = days * DAY_MS;
    // A leaf leaves the cache a day (or a quarter of its life, when shorter) before it expires.
    this.#marginMs = Math.min(DAY_MS, this.#lifetimeMs / 4);
    const keyType = opts.keyType ?? 'ecdsa-p256';
    const pair = keyType === 'rsa2048' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.#publicKey = pair.publicKey;
    this.#keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.#algorithm = signatureAlgorithm(opts.ca.key);
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    this.#fixedExtensions = [
      { name: 'basicConstraints', critical: true, cA: false },
      // RSA keys may also encipher (TLS 1.2 RSA key exchange); ECDSA keys only sign (RFC 5480 §3).
      keyType === 'rsa2048' ? { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true } : { name: 'keyUsage', critical: true, digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectKeyIdentifier', value: tlv(TAG.OCTET_STRING, keyIdentifier(spki)).toString('binary') },
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING } (RFC 5280 §4.2.1.1).
      { name: 'authorityKeyIdentifier', value: tlv(TAG.SEQUENCE, tlv(0x80, opts.ca.keyId)).toString('binary') },
    ];
    this.#contextOptions = { minVersion: 'TLSv1.2', ...opts.contextOptions };
    this.#cache = new LRUCache<string, Leaf>({ max: opts.cacheSize ?? 4096 });
    // The key PEM is checked once here, so a bad key fails the build, not the first handshake.
    createPrivateKey(this.#keyPem);
  }

  /** size is how many leaves are cached. */
  get size(): number {
    return this.#cache.size;
  }

  /** cached returns a host's leaf when it is in the cache and not due for renewal (synchronous). */
  cached(rawHost: string): Leaf | undefined {
    return this.#fresh(leafHost(rawHost).host);
  }

  /** leaf returns a host's leaf, minting it once however many requests ask at the same time. */
  leaf(rawHost: string): Promise<Leaf> {
    let host: string;
    let ip: boolean;
    try {
      ({ host, ip } = leafHost(rawHost));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const hit = this.#fresh(host);
    if (hit !== undefined) return Promise.resolve(hit);
    const pending = this.#inflight.get(host);
    if (pending !== undefined) {
      this.stats.joined++;
      return pending;
    }
    const p = this.#mint(host, ip).then(
      (leaf) => {
        this.#inflight.delete(host);
        this.#cache.set(host, leaf);
        return leaf;
      },
      (err: unknown) => {
        this.#inflight.delete(host);
        this.stats.failures++;
        throw err;
      },
    );
    this.#inflight.set(host, p);
    return p;
  }

  /** sniCallback serves `tls.createServer({ SNICallback })`; a client without SNI gets no leaf from it. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    this.leaf(servername).then(
      (l) => cb(null, l.context),
      (err: unknown) => cb(err as Error),
    );
  };

  #fresh(host: string): Leaf | undefined {
    const leaf = this.#cache.get(host);
    if (leaf === undefined) return undefined;
    if (leaf.renewAt <= this.#now()) {
      this.#cache.delete(host);
      return undefined;
    }
    this.stats.hits++;
    return leaf;
  }

  async #mint(host: string, ip: boolean): Promise<Leaf> {
    this.stats.mints++;
    const now = this.#now();
    const notBefore = new Date(now - BACKDATE_MS);
    // A leaf never outlives the CA that signed it.
    const notAfter = new Date(Math.min(now + this.#lifetimeMs, this.#ca.notAfter.getTime()));
    const subject = [
      // Clients check the SAN only (RFC 6125 §6.4.4). The CN is for people reading the certificate: at most
      // 64 characters (ub-common-name, RFC 5280 Appendix A), and never an IP literal, which some verifiers
      // would hold against a CA's dNSName name constraints as if it were a host name.
      ...(host.length <= 64 && !ip ? [{ name: 'commonName', value: host }] : []),
      { name: 'organizationName', value: 'Tollgate inspection' },
    ];
    const prepared = prepareCertificate(
      {
        subject,
        issuer: this.#ca.facts.subject,
        notBefore,
        notAfter,
        publicKey: this.#publicKey,
        signingKey: this.#ca.key,
        extensions: [...this.#fixedExtensions, { name: 'subjectAltName', altNames: [ip ? { type: 7, ip: host } : { type: 2, value: host }] }],
      },
      this.#algorithm,
    );
    const signature = await new Promise<Buffer>((resolve, reject) =>
      sign(this.#algorithm.hash, prepared.tbs, this.#ca.key, (err, sig) => (err ? reject(err) : resolve(sig))),
    );
    const certDer = finishCertificate(prepared, signature);
    const certPem = toPem(certDer);
    const context = createSecureContext({ ...this.#contextOptions, key: this.#keyPem, cert: certPem + this.#ca.chainPem });
    return {
      host,
      certDer,
      certPem,
      notBefore,
      notAfter,
      renewAt: Math.max(now, notAfter.getTime() - this.#marginMs),
      context,
    };
  }
}
