/**
 * generate: PAC text from config, rendered into the template `pac/tollgate.pac.template`.
 *
 * Pure and IO-free (the caller reads the template), so it is tested with tables. Every value that
 * reaches script text is checked against a strict pattern here, whatever the schema let through,
 * and written as an escaped JS string literal: no config value can end a string or a comment.
 */
import { parseCidr, parseHostPort } from '../config/ip.js';

/** PacRule is one generated `if`: the predicate call it makes, and what it returns when that holds. */
export interface PacRule {
  readonly fn: 'shExpMatch' | 'isPlainHostName' | 'isInNet';
  /** The predicate's arguments after `host`. */
  readonly args: readonly string[];
  /** In plain words, for `tollgate pac test`. */
  readonly why: string;
  readonly returns: 'DIRECT' | 'PROXY';
}

/** PacSpec is what one generated PAC file says. */
export interface PacSpec {
  readonly cloud: string;
  /** Primary first, then the secondaries, each host:port. */
  readonly gateways: readonly string[];
  readonly bypass: readonly string[];
  readonly plainHostsDirect: boolean;
  readonly privateRangesDirect: boolean;
  /** One comment line saying what this file is for (may hold any text: it is escaped). */
  readonly subject: string;
}

/** GeneratedPac is the text and the rules it holds, in order. */
export interface GeneratedPac {
  readonly text: string;
  readonly rules: readonly PacRule[];
}

/** PRIVATE_V4 are the IPv4 ranges that never go through the proxy (RFC 1918, RFC 3927, RFC 1122 loopback). */
const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '127.0.0.0/8'];
/**
 * PRIVATE_V6 are shell expressions for IPv6 literals: loopback, unique local fc00::/7 (RFC 4193) and
 * link-local fe80::/10 (RFC 4291). Browsers pass IPv6 hosts without brackets; no name has a colon.
 */
const PRIVATE_V6 = ['::1', 'fc*:*', 'fd*:*', 'fe8*:*', 'fe9*:*', 'fea*:*', 'feb*:*'];

const SAFE_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;
const SAFE_V6_PATTERN = /^[0-9a-f:*]+$/;

/**
 * jsString writes text as a double-quoted JS string literal that is pure ASCII: JSON escaping, plus
 * every non-ASCII character as \uXXXX, so U+2028 and U+2029 (line terminators in JS source, not in
 * JSON) cannot end a comment or a line.
 */
export function jsString(text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** proxyList is the PAC answer for the gateways: `PROXY a:1; PROXY b:2`. */
export function proxyList(gateways: readonly string[]): string {
  for (const g of gateways) {
    const hp = parseHostPort(g);
    if (hp === null || hp.port === 0) throw new Error(`PAC gateway "${g}" is not host:port`);
  }
  return gateways.map((g) => `PROXY ${g}`).join('; ');
}

/** v4Mask turns a prefix length into a dotted netmask, as isInNet wants it. */
function v4Mask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.');
}

/** cidrRule is an isInNet rule for an IPv4 address or CIDR. */
function cidrRule(text: string, why: string): PacRule {
  const c = parseCidr(text);
  if (typeof c === 'string' || c.family !== 4) throw new Error(`PAC range "${text}" is not IPv4`);
  const n = Number(c.start);
  const net = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  return { fn: 'isInNet', args: [net, v4Mask(c.prefix)], why, returns: 'DIRECT' };
}

/** hostRule is a shExpMatch rule for one checked host pattern. */
function hostRule(pattern: string, why: string, returns: PacRule['returns']): PacRule {
  if (!SAFE_PATTERN.test(pattern)) throw new Error(`PAC host pattern "${pattern}" is not a host or *.domain`);
  return { fn: 'shExpMatch', args: [pattern], why, returns };
}

/** bypassRules turns one bypass entry into its rules: `.domain` is the domain and its subdomains. */
function bypassRules(entry: string): PacRule[] {
  const e = entry.toLowerCase();
  const why = `bypass list: ${e}`;
  if (/^[0-9./]+$/.test(e)) return [cidrRule(e, why)];
  if (e.startsWith('.')) return [hostRule(e.slice(1), why, 'DIRECT'), hostRule(`*${e}`, why, 'DIRECT')];
  return [hostRule(e, why, 'DIRECT')];
}

/** pacRules lists the rules of one PAC file in the order they are tested. */
export function pacRules(spec: PacSpec): PacRule[] {
  const cloud = spec.cloud.toLowerCase();
  const rules: PacRule[] = [
    hostRule(cloud, `Tollgate's own host ${cloud}`, 'PROXY'),
    hostRule(`*.${cloud}`, `Tollgate's own hosts *.${cloud}`, 'PROXY'),
  ];
  if (spec.plainHostsDirect) rules.push({ fn: 'isPlainHostName', args: [], why: 'plain host name (no dot)', returns: 'DIRECT' });
  if (spec.privateRangesDirect) {
    for (const r of PRIVATE_V4) rules.push(cidrRule(r, `private, link-local or loopback address ${r}`));
    for (const p of PRIVATE_V6) {
      if (!SAFE_V6_PATTERN.test(p)) throw new Error(`bad IPv6 pattern ${p}`);
      rules.push({ fn: 'shExpMatch', args: [p], why: `private, link-local or loopback IPv6 address (${p})`, returns: 'DIRECT' });
    }
  }
  for (const b of spec.bypass) rules.push(...bypassRules(b));
  return rules;
}

/** ruleLine is one rule as script; isInNet only ever sees IPv4 literals, so it never resolves a name. */
function ruleLine(r: PacRule): string {
  const ret = r.returns === 'DIRECT' ? '"DIRECT"' : 'proxies';
  const args = r.args.map(jsString).join(', ');
  if (r.fn === 'isPlainHostName') return `  if (!ipv6 && isPlainHostName(host)) return ${ret};`;
  if (r.fn === 'isInNet') return `  if (ipv4 && isInNet(host, ${args})) return ${ret};`;
  if (r.args[0]!.includes(':')) return `  if (ipv6 && shExpMatch(host, ${args})) return ${ret};`;
  return `  if (shExpMatch(host, ${args})) return ${ret};`;
}

/** generatePac renders the template for one spec; it throws on a value no PAC may hold. */
export function generatePac(spec: PacSpec, template: string): GeneratedPac {
  if (spec.gateways.length === 0) throw new Error('a PAC file needs at least one gateway');
  const rules = pacRules(spec);
  const fill: Record<string, string> = {
    SUBJECT: jsString(spec.subject).slice(1, -1),
    CLOUD: jsString(spec.cloud.toLowerCase()).slice(1, -1),
    PROXIES: jsString(proxyList(spec.gateways)),
    RULES: rules.map(ruleLine).join('\n'),
  };
  const text = template.replace(/\{\{([A-Z]+)\}\}/g, (m, k: string) => {
    const v = fill[k];
    if (v === undefined) throw new Error(`PAC template has an unknown slot ${m}`);
    return v;
  });
  return { text, rules };
}

/** ruleFor finds the generated rule a predicate call belongs to (for `tollgate pac test`). */
export function ruleFor(rules: readonly PacRule[], fn: string, args: readonly unknown[]): PacRule | null {
  const tail = args.slice(1);
  return rules.find((r) => r.fn === fn && r.args.length === tail.length && r.args.every((a, i) => a === tail[i])) ?? null;
}
