/**
 * exempt: host and URL patterns compiled once at activation, for authentication exemptions and the
 * clstart redirect allow-list.
 *
 *   "www.example.com"   that host only
 *   "*.okta.com"        any subdomain of okta.com (not okta.com itself)
 *   ".okta.com"         okta.com and any subdomain
 *   "http://a.test/x"   that URL (query ignored); "http://a.test/x*" any URL starting so
 *
 * Matching a host walks its labels and does one map lookup per label, so it costs the same with
 * ten patterns or ten thousand.
 */

/** HostMatcher answers whether a lower-case, port-free host matches any of its patterns. */
export class HostMatcher {
  private readonly exact = new Set<string>();
  /** Suffix without the leading dot → whether the bare domain itself also matches. */
  private readonly suffixes = new Map<string, boolean>();

  constructor(patterns: Iterable<string>) {
    for (const raw of patterns) {
      const p = raw.toLowerCase();
      if (p.startsWith('*.')) this.suffixes.set(p.slice(2), this.suffixes.get(p.slice(2)) ?? false);
      else if (p.startsWith('.')) this.suffixes.set(p.slice(1), true);
      else this.exact.add(p);
    }
  }

  get size(): number {
    return this.exact.size + this.suffixes.size;
  }

  matches(host: string): boolean {
    if (this.exact.has(host)) return true;
    if (this.suffixes.size === 0) return false;
    if (this.suffixes.get(host) === true) return true;
    for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) {
      if (this.suffixes.has(host.slice(i + 1))) return true;
    }
    return false;
  }
}

const AMBIGUOUS_PATH = /;|%2f|%5c|%2e/i;

/** UrlMatcher answers whether a URL (scheme://host[:port]/path, no query) matches an exemption URL. */
export class UrlMatcher {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];
  /** Hosts that appear in any pattern: a request for another host needs no URL check at all. */
  private readonly hosts = new Set<string>();

  constructor(patterns: Iterable<string>) {
    for (const raw of patterns) {
      const prefix = raw.endsWith('*');
      const u = new URL(prefix ? raw.slice(0, -1) : raw);
      this.hosts.add(u.hostname.toLowerCase());
      // URL normalises case of scheme and host, and default ports, so both sides compare alike.
      const norm = `${u.protocol}//${u.host}${u.pathname}`;
      if (prefix) this.prefixes.push(norm.endsWith('/') && !raw.slice(0, -1).endsWith('/') ? norm.slice(0, -1) : norm);
      else this.exact.add(norm);
    }
  }

  get size(): number {
    return this.exact.size + this.prefixes.length;
  }

  /** matches takes the request's host (lower case) and its absolute URL. */
  matches(host: string, url: string): boolean {
    if (!this.hosts.has(host)) return false;
    let norm: string;
    try {
      const u = new URL(url);
      norm = `${u.protocol}//${u.host}${u.pathname}`;
    } catch {
      return false;
    }
    if (this.exact.has(norm)) return true;
    // Path tricks that some servers resolve differently (`..;`, encoded slashes or dots) are never exempt by prefix.
    if (this.prefixes.length === 0 || AMBIGUOUS_PATH.test(norm)) return false;
    for (const p of this.prefixes) if (norm.startsWith(p)) return true;
    return false;
  }
}

/** Exemptions is what the pipeline consults before identifying anyone. */
export interface Exemptions {
  readonly hosts: HostMatcher;
  readonly urls: UrlMatcher;
}

/**
 * compileExemptions builds the exemption matchers; `idpSsoUrls` are the configured IdPs' SSO URLs,
 * whose hosts are exempt whatever the config says, so a misconfiguration cannot loop the login.
 */
export function compileExemptions(hosts: readonly string[], urls: readonly string[], idpSsoUrls: readonly string[]): Exemptions {
  const idpHosts: string[] = [];
  for (const u of idpSsoUrls) {
    try {
      idpHosts.push(new URL(u).hostname.toLowerCase());
    } catch {
      // The schema already refused malformed SSO URLs.
    }
  }
  return Object.freeze({ hosts: new HostMatcher([...hosts, ...idpHosts]), urls: new UrlMatcher(urls) });
}
