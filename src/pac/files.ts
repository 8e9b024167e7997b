/**
 * files: the PAC files of one runtime generation, built and validated at activation.
 *
 * There is a default PAC and, for each location listed under `pac.locations`, one of its own. Each
 * is the generated file or the admin's custom file. Before an activation succeeds, every one of
 * them is compiled and evaluated on a table of URLs in a sandbox (evaluate.ts); a file that does
 * not compile, throws, or answers anything but a PAC result list blocks the activation with the
 * reason. Serving is then only picking a text, plus ${SRCIP} for custom files that use it, cached
 * per (file, client address).
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../config/load.js';
import { parseCidr, parseHostPort } from '../config/ip.js';
import type { Config } from '../config/schema.js';
import { checkApart, type PacCheck } from './check.js';
import { generatePac, type PacRule } from './generate.js';
import { prepareTemplate, renderTemplate, type PacTemplate } from './variables.js';
import { pacName } from './names.js';

/** PAC_CONTENT_TYPE is the media type browsers expect for PAC and WPAD files. */
export const PAC_CONTENT_TYPE = 'application/x-ns-proxy-autoconfig';
/** MAX_PAC_BYTES bounds a custom file, as ZIA bounds uploaded PAC files. */
export const MAX_PAC_BYTES = 256 * 1024;
/** Validation asks about at most this many URLs per file (the fixed ones, then samples of the config's patterns). */
const MAX_TABLE = 64;

/** PacVariant is one PAC file as served. */
export interface PacVariant {
  /** '' for the default PAC, else the location's lower-case name. */
  readonly key: string;
  /** `default` or `location "NAME"`. */
  readonly label: string;
  readonly gateways: readonly string[];
  /** `generated`, or the custom file's path as configured. */
  readonly source: string;
  readonly template: PacTemplate;
  /** The generated rules, for explaining an answer; null for a custom file. */
  readonly rules: readonly PacRule[] | null;
}

/** PacFiles answers which PAC a request gets and renders it. */
export class PacFiles {
  readonly #cache = new LRUCache<string, string>({ max: 4096 });
  constructor(
    /** The default PAC, or null when none can be built (see unavailable). */
    readonly fallback: PacVariant | null,
    /** Per-location PACs by lower-case location name. */
    readonly byLocation: ReadonlyMap<string, PacVariant>,
    /** Why there is no default PAC. */
    readonly unavailable: string | null,
  ) {}

  /** forLocation is the PAC of a location (its own, or the default). */
  forLocation(location: string | null): PacVariant | null {
    return (location !== null ? this.byLocation.get(location.toLowerCase()) : undefined) ?? this.fallback;
  }

  /**
   * select picks the PAC for a request path: `/proxy.pac` and `/wpad.dat` give the PAC of the
   * client's location (as ZIA picks the gateway by where the client is), `/<location>.pac` that
   * location's, and any other name the default PAC.
   */
  select(path: string, clientLocation: string | null): PacVariant | null {
    const name = pacName(path);
    if (name === 'proxy' || name === 'wpad') return this.forLocation(clientLocation);
    return (name !== null ? this.byLocation.get(name) : undefined) ?? this.fallback;
  }

  /** text renders a variant for one client address; files with ${SRCIP} are cached per address. */
  text(v: PacVariant, clientIp: string): string {
    if (v.template.pieces.length === 1) return v.template.pieces[0]!;
    const key = `${v.key}\n${clientIp}`;
    let t = this.#cache.get(key);
    if (t === undefined) {
      t = renderTemplate(v.template, clientIp);
      this.#cache.set(key, t);
    }
    return t;
  }
}

/** NO_PAC is the runtime's PAC set before one is built (tests that build a runtime by hand). */
export const NO_PAC = new PacFiles(null, new Map(), 'PAC files are not built');

/** templatePath finds `pac/tollgate.pac.template` from the source tree or from the compiled one under dist/. */
export function templatePath(): string {
  for (const up of ['../../pac/', '../../../pac/']) {
    const p = fileURLToPath(new URL(`${up}tollgate.pac.template`, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('pac/tollgate.pac.template is missing from the installation');
}

/** gatewaysFor are a location's own PAC gateways, else the default ones (or why there are none). */
export function gatewaysFor(config: Config, location: string | null): { gateways: readonly string[] } | { reason: string } {
  const own = location === null ? undefined : config.pac.locations.find((l) => l.name.toLowerCase() === location.toLowerCase())?.gateways;
  return own !== undefined ? { gateways: own } : defaultGateways(config);
}

/** defaultGateways are pac.gateways, or the proxy listener when it is an address a browser can use. */
function defaultGateways(config: Config): { gateways: readonly string[] } | { reason: string } {
  if (config.pac.gateways.length > 0) return { gateways: config.pac.gateways };
  const l = parseHostPort(config.listeners.proxy)!;
  if (l.port === 0 || l.host === '0.0.0.0' || l.host === '::') {
    return { reason: `pac.gateways is not set, and the proxy listener ${config.listeners.proxy} is no address a browser can be given` };
  }
  return { gateways: [config.listeners.proxy] };
}

/** sampleHost is a host a bypass or exemption pattern matches, for the validation table. */
function sampleUrl(pattern: string): string {
  const p = pattern.toLowerCase();
  if (/^[0-9./]+$/.test(p)) {
    const c = parseCidr(p);
    if (typeof c === 'string' || c.family !== 4) return 'http://192.0.2.1/';
    const n = Number(c.start);
    return `http://${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/`;
  }
  if (p.startsWith('*.')) return `http://www.${p.slice(2)}/`;
  if (p.startsWith('.')) return `http://${p.slice(1)}/`;
  return `http://${p}/`;
}

/** validationUrls is the table every PAC file of a config is evaluated on. */
export function validationUrls(config: Config): string[] {
  const cloud = config.cloud.toLowerCase();
  const urls = [
    'http://intranet/',
    'http://10.1.2.3/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://169.254.1.1/',
    'http://127.0.0.1:8080/',
    'http://[::1]/',
    'http://[fd00::1]/',
    'http://[2001:db8::1]/',
    'http://198.51.100.7/',
    'http://www.example.com/',
    'https://www.example.com/some/path?q=1',
    'ws://www.example.com/socket',
    `http://ip.${cloud}/`,
    `http://gateway.${cloud}/login`,
    `http://pac.${cloud}/proxy.pac`,
  ];
  const samples = [...config.pac.bypass, ...config.authentication.exemptions.hosts].map(sampleUrl);
  for (const idp of config.idps) samples.push(idp.ssoUrl);
  for (const s of samples) {
    if (urls.length >= MAX_TABLE) break;
    try {
      urls.push(new URL(s).href);
    } catch {
      // A sample that is no URL is not worth asking about; the schema checked the pattern itself.
    }
  }
  return urls;
}

/** PreparedPac is the result of an activation's PAC step. */
export interface PreparedPac {
  readonly files: PacFiles;
  readonly warnings: readonly string[];
}

/** SAMPLE_CLIENTS are the addresses ${SRCIP} and myIpAddress() take while validating. */
const SAMPLE_CLIENTS = ['192.0.2.10', '2001:db8::10'];

/** check is what validating one variant takes: its text as each sample client would get it. */
function check(v: PacVariant, where: string): PacCheck {
  const label = `${where} (${v.label} PAC${v.rules === null ? `, ${v.source}` : ''})`;
  const clients = v.template.pieces.length === 1 ? SAMPLE_CLIENTS.slice(0, 1) : SAMPLE_CLIENTS;
  return { label, runs: clients.map((clientIp) => ({ clientIp, text: renderTemplate(v.template, clientIp) })) };
}

/** preparePac builds and validates every PAC file of a config; it throws ConfigError with every problem. */
export async function preparePac(config: Config, opts: { baseDir: string; source: string; template?: string }): Promise<PreparedPac> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const template = opts.template ?? (await readFile(templatePath(), 'utf8'));
  const readCustom = async (path: string, where: string): Promise<string | null> => {
    const full = isAbsolute(path) ? path : resolve(opts.baseDir, path);
    try {
      const buf = await readFile(full);
      if (buf.length > MAX_PAC_BYTES) {
        errors.push(`${where}: ${path} is larger than ${MAX_PAC_BYTES / 1024} KiB`);
        return null;
      }
      return buf.toString('utf8');
    } catch (err) {
      errors.push(`${where}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return null;
    }
  };
  const build = async (key: string, name: string | null, gateways: readonly string[], file: string | undefined, where: string): Promise<PacVariant | null> => {
    const label = name === null ? 'default' : `location ${JSON.stringify(name)}`;
    if (file === undefined) {
      const subject = name === null ? `Default PAC for ${config.cloud}` : `PAC for location ${name} of ${config.cloud}`;
      const g = generatePac({ cloud: config.cloud, gateways, bypass: config.pac.bypass, plainHostsDirect: config.pac.plainHostsDirect, privateRangesDirect: config.pac.privateRangesDirect, subject }, template);
      return { key, label, gateways, source: 'generated', template: { pieces: [g.text], unknown: [] }, rules: g.rules };
    }
    const text = await readCustom(file, `${where}.file`);
    if (text === null) return null;
    const t = prepareTemplate(text, gateways);
    if (t.unknown.length > 0) warnings.push(`${where}.file: ${file} uses ${t.unknown.map((u) => `\${${u}}`).join(', ')}, which Tollgate does not substitute (known: \${GATEWAY}, \${SECONDARY_GATEWAY}, \${GATEWAY_HOST}, \${SRCIP})`);
    return { key, label, gateways, source: file, template: t, rules: null };
  };

  const dflt = defaultGateways(config);
  let fallback: PacVariant | null = null;
  let unavailable: string | null = null;
  if ('gateways' in dflt) fallback = await build('', null, dflt.gateways, config.pac.file, 'pac');
  else unavailable = dflt.reason;
  const byLocation = new Map<string, PacVariant>();
  for (const [i, l] of config.pac.locations.entries()) {
    const where = `pac.locations[${i}]`;
    const gateways = l.gateways ?? ('gateways' in dflt ? dflt.gateways : null);
    if (gateways === null) {
      errors.push(`${where}: location "${l.name}" has no gateways of its own, and ${unavailable}`);
      continue;
    }
    const name = config.locations.find((x) => x.name.toLowerCase() === l.name.toLowerCase())?.name ?? l.name;
    const v = await build(l.name.toLowerCase(), name, gateways, l.file ?? config.pac.file, where);
    if (v !== null) byLocation.set(v.key, v);
  }

  const urls = validationUrls(config);
  const checks: PacCheck[] = [];
  if (fallback !== null) checks.push(check(fallback, 'pac'));
  for (const [i, l] of config.pac.locations.entries()) {
    const v = byLocation.get(l.name.toLowerCase());
    if (v !== undefined) checks.push(check(v, `pac.locations[${i}]`));
  }
  const checked = await checkApart({ checks, urls, hosts: Object.entries(config.hosts).map(([k, v]) => [k.toLowerCase(), v]) });
  errors.push(...checked.errors);
  warnings.push(...checked.warnings);
  if (errors.length > 0) throw new ConfigError(opts.source, errors);
  return { files: new PacFiles(fallback, byLocation, unavailable), warnings };
}
