/**
 * inspection: the config's TLS-inspection settings built, at activation, into what the data plane
 * reads: which hosts to inspect where, the CA and its leaf minter, and whom to trust upstream.
 *
 *   CONNECT host -> decide(host, location) -> plain tunnel
 *                                          -> terminate with minter.leaf(host) -> upstream(host).context
 *
 * With inspection on anywhere and no usable CA, the activation fails (and so does the start), with
 * the command that makes one. Only `labCa: true` (the embedded lab default) makes a CA unasked, and
 * it is labelled NOT FOR PRODUCTION. The minter (its key and cached leaves) is kept across
 * activations while the CA and leaf settings stay the same.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { ConfigError } from '../config/load.js';
import type { Config, InspectionConfig } from '../config/schema.js';
import { compileExemptions, HostMatcher } from '../auth/exempt.js';
import type { LocationMatch } from '../proxy/locate.js';
import { CaError, createCa, loadCa, writeCa, type CaPaths, type CertificateAuthority } from './ca.js';
import { LeafMinter } from './leaf.js';

/** InspectReason says which rule decided; it goes into the access log. */
export type InspectReason = 'do_not_inspect' | 'exempt' | 'host' | 'location' | 'unknown_location';

/** InspectDecision is whether one CONNECT is inspected, and why. */
export interface InspectDecision {
  readonly inspect: boolean;
  readonly reason: InspectReason;
}

/** UpstreamTrust is what an upstream TLS connection for one host verifies against. */
export interface UpstreamTrust {
  /** context holds the CAs: Node's bundled public roots, the extra bundle, and a host's own lab CA. */
  readonly context: SecureContext;
  /** labCa is true when a per-host lab CA is trusted for this host. */
  readonly labCa: boolean;
}

/** Inspection is one activation's inspection state. */
export interface Inspection {
  /** used is true when some location, sublocation or host override turns inspection on. */
  readonly used: boolean;
  /** ca is the loaded CA, or null when there is none (allowed only while inspection is not used). */
  readonly ca: CertificateAuthority | null;
  readonly caPaths: CaPaths;
  readonly minter: LeafMinter | null;
  decide(host: string, match: LocationMatch | null): InspectDecision;
  upstream(host: string): UpstreamTrust;
}

/** PrepareOptions are an activation's inputs besides the config. */
export interface PrepareOptions {
  readonly baseDir: string;
  readonly source: string;
  /** previous is the running activation's Inspection, whose minter is reused when nothing it depends on changed. */
  readonly previous?: Inspection | null;
  readonly now?: Date;
}

const decision = (inspect: boolean, reason: InspectReason): InspectDecision => Object.freeze({ inspect, reason });
const DECISIONS = {
  doNotInspect: decision(false, 'do_not_inspect'),
  exempt: decision(false, 'exempt'),
  hostOn: decision(true, 'host'),
  hostOff: decision(false, 'host'),
  locationOn: decision(true, 'location'),
  locationOff: decision(false, 'location'),
  unknown: decision(false, 'unknown_location'),
};

/** inspectionUsed lists where inspection is turned on (config paths), empty when nowhere. */
export function inspectionUsed(config: Config): string[] {
  const where: string[] = [];
  config.locations.forEach((l, i) => {
    if (l.inspection === 'on') where.push(`locations[${i}] "${l.name}"`);
    l.sublocations.forEach((s, j) => {
      if (s.inspection === 'on') where.push(`locations[${i}].sublocations[${j}] "${s.name}"`);
    });
  });
  config.inspection.hosts.forEach((h, i) => {
    if (h.inspect === 'on') where.push(`inspection.hosts[${i}]`);
  });
  return where;
}

/** prepareInspection reads the CA and CA bundles and compiles the rules; throws ConfigError with every problem. */
export async function prepareInspection(config: Config, opts: PrepareOptions): Promise<{ inspection: Inspection; warnings: string[] }> {
  const ic = config.inspection;
  const full = (p: string) => (isAbsolute(p) ? p : resolve(opts.baseDir, p));
  const caPaths = { cert: full(ic.caCert), key: full(ic.caKey) };
  const errors: string[] = [];
  const warnings: string[] = [];
  const on = inspectionUsed(config);
  const used = on.length > 0;
  // An https gateway is served inside TLS with our leaf, so it needs the CA as inspection does.
  const needed = config.authentication.gatewayScheme === 'https' ? [...on, 'authentication.gatewayScheme https'] : on;

  let ca: CertificateAuthority | null = null;
  try {
    ca = await loadCa(caPaths, opts.now);
  } catch (err) {
    if (!(err instanceof CaError)) throw err;
    if (err.code === 'CA_MISSING' && ic.labCa) {
      try {
        const lab = createCa({ lab: true, ...(opts.now ? { now: opts.now } : {}) });
        await writeCa(caPaths, lab.certPem, lab.keyPem);
        ca = await loadCa(caPaths, opts.now);
        warnings.push(`inspection: made a lab CA at ${caPaths.cert} (NOT FOR PRODUCTION); users install it from http://ip.${config.cloud.toLowerCase()}/ca.crt`);
      } catch (e) {
        // Half a CA on disk (one file of the two) is the admin's to sort out; it is never overwritten.
        if (!(e instanceof CaError)) throw e;
        errors.push(`inspection: cannot make a lab CA: ${e.message}`);
      }
    } else if (needed.length > 0) {
      errors.push(`inspection: TLS inspection is on (${needed.join(', ')}) but ${err.code === 'CA_MISSING' ? err.message : `the CA cannot be used: ${err.message}`}`);
    } else if (err.code !== 'CA_MISSING') {
      // Inspection is off: a broken CA must not stop Tollgate, but the admin hears of it.
      warnings.push(`inspection: the CA at ${caPaths.cert} cannot be used: ${err.message}`);
    }
  }
  if (ca?.warning) warnings.push(`inspection: ${ca.warning}`);

  const trust = used ? await upstreamTrust(ic, full, errors) : null;
  if (errors.length > 0) throw new ConfigError(opts.source, errors);

  const minter = ca === null ? null : reuseOrMint(ca, ic, opts.previous ?? null);
  const doNotInspect = new HostMatcher(ic.doNotInspect);
  const exempt = compileExemptions(config.authentication.exemptions.hosts, [], config.idps.map((p) => p.ssoUrl)).hosts;
  const overrides = ic.hosts.filter((h) => h.inspect !== undefined).map((h) => ({ matcher: new HostMatcher(h.match), on: h.inspect === 'on' }));

  const inspection: Inspection = Object.freeze({
    used,
    ca,
    caPaths,
    minter,
    decide(host: string, match: LocationMatch | null): InspectDecision {
      if (doNotInspect.matches(host)) return DECISIONS.doNotInspect;
      if (exempt.matches(host)) return DECISIONS.exempt;
      for (const o of overrides) if (o.matcher.matches(host)) return o.on ? DECISIONS.hostOn : DECISIONS.hostOff;
      if (match === null) return DECISIONS.unknown;
      return (match.sublocation?.inspection ?? match.location.inspection) === 'on' ? DECISIONS.locationOn : DECISIONS.locationOff;
    },
    upstream(host: string): UpstreamTrust {
      if (trust === null) throw new Error('inspection is not used in this activation');
      for (const t of trust.perHost) if (t.matcher.matches(host)) return t.trust;
      return trust.standard;
    },
  });
  return { inspection, warnings };
}

/** reuseOrMint keeps the running minter (its key and cache) when the CA and leaf settings are unchanged. */
function reuseOrMint(ca: CertificateAuthority, ic: InspectionConfig, previous: Inspection | null): LeafMinter {
  const key = `${ca.x509.fingerprint256}|${ic.leafKey}|${ic.leafValidityDays}|${ic.leafCacheSize}`;
  const prev = previous?.minter ?? null;
  if (prev !== null && minterKeys.get(prev) === key) return prev;
  const m = new LeafMinter({ ca, keyType: ic.leafKey, validityDays: ic.leafValidityDays, cacheSize: ic.leafCacheSize });
  minterKeys.set(m, key);
  return m;
}
const minterKeys = new WeakMap<LeafMinter, string>();

/** Largest CA bundle read; Mozilla's whole root store is about 220 KB. */
const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;
/** SYSTEM_CA_BUNDLES are where Debian/Ubuntu, Red Hat/Fedora and Alpine/macOS (OpenSSL) keep the system's CAs. */
const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** upstreamTrust builds one context for the standard trust and one per host override with its own lab CA. */
async function upstreamTrust(
  ic: InspectionConfig,
  full: (p: string) => string,
  errors: string[],
): Promise<{ standard: UpstreamTrust; perHost: { matcher: HostMatcher; trust: UpstreamTrust }[] }> {
  const readBundle = async (path: string, where: string): Promise<string[]> => {
    try {
      const buf = await readFile(full(path));
      if (buf.length > MAX_BUNDLE_BYTES) throw new Error(`larger than ${MAX_BUNDLE_BYTES} bytes`);
      const pems = buf.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
      if (pems.length === 0) throw new Error('holds no PEM certificate');
      for (const p of pems) new X509Certificate(p); // throws on a damaged one
      return pems;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // A file-system error names the system call; say only its code, not the full path again.
      errors.push(`${where}: ${path}: ${e.syscall !== undefined ? `cannot read (${e.code})` : e.message}`);
      return [];
    }
  };
  const extra = ic.upstreamCaBundle !== undefined ? await readBundle(ic.upstreamCaBundle, 'inspection.upstreamCaBundle') : [];
  const systemPath = ic.systemCaBundle === undefined ? SYSTEM_CA_BUNDLES.find((p) => existsSync(p)) : ic.systemCaBundle === false ? undefined : ic.systemCaBundle;
  const system = systemPath !== undefined ? await readBundle(systemPath, 'inspection.systemCaBundle') : [];
  const base = [...new Set([...rootCertificates, ...system, ...extra])];
  const standard = Object.freeze({ context: createSecureContext({ ca: base }), labCa: false });
  const perHost: { matcher: HostMatcher; trust: UpstreamTrust }[] = [];
  for (const [i, h] of ic.hosts.entries()) {
    if (h.upstreamCa === undefined) continue;
    const own = await readBundle(h.upstreamCa, `inspection.hosts[${i}].upstreamCa`);
    perHost.push({ matcher: new HostMatcher(h.match), trust: Object.freeze({ context: createSecureContext({ ca: [...base, ...own] }), labCa: true }) });
  }
  return { standard, perHost };
}
