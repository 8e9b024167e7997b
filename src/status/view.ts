/**
 * view: the facts the status page at `ip.<cloud>` shows, gathered once per request. The same object
 * is the `?format=json` document, so its keys are stable (README, "Status page").
 *
 *   Browser -> Proxy (GET http://ip.<cloud>/)      -> through Tollgate: location, identity, session
 *   Browser -> control listener (Host: ip.<cloud>)  -> direct: "not through Tollgate" + PAC URLs
 *   Client  -> proxy port (GET / Host: ip.<cloud>)  -> direct as well (origin form, not a proxy request)
 *
 * Why origin form on the proxy port counts as direct: a client that uses the proxy sends absolute-form
 * requests (`GET http://ip.<cloud>/`). An origin-form request reaches the proxy port only when the
 * client itself resolved ip.<cloud> to a Tollgate node and connected there, as it would to any web
 * server: its other traffic goes straight to the web, which is exactly what the page must tell it.
 * A future transparent listener (routed traffic) is a different door and is "through Tollgate".
 */
import { csrfToken } from '../auth/gateway.js';
import { normalizeIp } from '../config/ip.js';
import { clientAddress, requiresSignIn, type Transaction } from '../proxy/pipeline.js';
import type { Runtime } from '../runtime.js';
import type { CaInfo } from './certificate.js';

/** ReachedBy is the door the request came in by. */
export type ReachedBy = 'proxy' | 'control-listener' | 'proxy-listener-direct';

/** IdentifiedBy is how this request was attributed: a session (cookie, IP surrogate), exempt, or not at all. */
export type StatusIdentifiedBy = 'cookie' | 'surrogate' | 'exempt' | 'none';

/** StatusView is what the page shows and what `?format=json` returns. */
export interface StatusView {
  /** Whether the request came through Tollgate's proxy (an absolute-form request on the proxy listener). */
  readonly viaProxy: boolean;
  readonly reachedBy: ReachedBy;
  readonly cloud: string;
  readonly node: string;
  /** The worker process that answered, when the node runs several (else null). */
  readonly worker: Worker | null;
  /** The client address Tollgate located: the peer, or a trusted forwarder's X-Forwarded-For entry. */
  readonly clientIp: string;
  readonly clientIpSource: 'peer' | 'x-forwarded-for';
  /** The TCP peer (the forwarder, when clientIpSource is x-forwarded-for). */
  readonly peerIp: string;
  readonly location: string | null;
  readonly sublocation: string | null;
  /** Whether sign-in is required for this client (location setting, or unknownSources: authenticate). */
  readonly enforceAuthentication: boolean;
  readonly authenticated: boolean;
  readonly identifiedBy: StatusIdentifiedBy;
  /** Why no identity is needed, when identifiedBy is exempt. */
  readonly exemptBecause: 'location' | 'exemption' | null;
  readonly user: StatusUser | null;
  /** The logout form's CSRF token, when signed in. */
  readonly logoutCsrf: string | null;
  readonly configVersion: number;
  /** PAC URLs a browser can be given, best first. */
  readonly pacUrls: readonly string[];
  /** Tollgate's CA for TLS inspection, when one is configured. */
  readonly caCertificate: StatusCa | null;
}

/** StatusUser is the signed-in user, as the session knows them. */
export interface StatusUser {
  readonly loginName: string;
  readonly displayName: string;
  readonly department: string;
  readonly groups: readonly string[];
  /** The IdP's display name, and its id in config. */
  readonly idp: string;
  readonly idpId: string;
  readonly signedInAt: string;
  readonly expiresAt: string;
  readonly ageSeconds: number;
}

/** StatusCa is where the CA certificate can be downloaded, and how to recognise it. */
export interface StatusCa {
  readonly derUrl: string;
  readonly pemUrl: string;
  readonly subject: string;
  readonly sha256: string;
}

/** Address is a listener's bound address. */
export interface Address {
  readonly address: string;
  readonly port: number;
}

/** StatusInput is what one request brings to the view. */
/** Worker names one of a node's worker processes. */
export interface Worker {
  readonly id: number;
  readonly pid: number;
}

export interface StatusInput {
  readonly rt: Runtime;
  /** The proxy's transaction; null on the control listener. */
  readonly tx: Transaction | null;
  /** The TCP peer of this request. */
  readonly peerIp: string;
  /** X-Forwarded-For of a request on the control listener (the proxy has already read its own). */
  readonly xff: string | string[] | undefined;
  /** The local address this request arrived on; it names the node when the proxy listens on a wildcard. */
  readonly localAddress: string;
  /** The proxy listener as bound (port 0 in config becomes a real port), when known. */
  readonly proxyListener: Address | null;
  readonly ca: CaInfo | null;
  readonly worker: Worker | null;
  readonly now: number;
}

/** buildStatusView gathers the facts; it reads only the runtime snapshot and the transaction. */
export function buildStatusView(i: StatusInput): StatusView {
  const { rt, tx } = i;
  const reachedBy: ReachedBy = tx === null ? 'control-listener' : tx.originForm === true ? 'proxy-listener-direct' : 'proxy';
  const viaProxy = reachedBy === 'proxy';
  const clientIp = tx?.clientIp ?? clientAddress(rt, i.peerIp, i.xff);
  const match = tx !== null ? tx.match : rt.locator.lookup(clientIp);
  const enforce = requiresSignIn(rt, match);
  // Only a proxied request carries an identity; a direct one says so and shows none.
  const s = viaProxy ? tx!.identity?.session : undefined;
  const exemptBecause = !viaProxy || s !== undefined ? null : !enforce ? 'location' : isExemptHost(rt, tx!) ? 'exemption' : null;
  return {
    viaProxy,
    reachedBy,
    cloud: rt.cloud,
    node: rt.nodeName,
    worker: i.worker,
    clientIp,
    clientIpSource: clientIp === i.peerIp ? 'peer' : 'x-forwarded-for',
    peerIp: i.peerIp,
    location: match?.location.name ?? null,
    sublocation: match?.sublocation?.name ?? null,
    enforceAuthentication: enforce,
    authenticated: s !== undefined,
    identifiedBy: s !== undefined ? tx!.identity!.by : exemptBecause !== null ? 'exempt' : 'none',
    exemptBecause,
    user:
      s === undefined
        ? null
        : {
            loginName: s.loginName,
            displayName: s.displayName,
            department: s.department,
            groups: s.groups,
            idp: rt.idps.get(s.idp)?.config.name ?? s.idp,
            idpId: s.idp,
            signedInAt: new Date(s.createdAt).toISOString(),
            expiresAt: new Date(s.expiresAt).toISOString(),
            ageSeconds: Math.max(0, Math.round((i.now - s.createdAt) / 1000)),
          },
    logoutCsrf: s === undefined ? null : csrfToken(s.id),
    configVersion: rt.version,
    pacUrls: pacUrls(rt, i.proxyListener, i.localAddress),
    caCertificate:
      i.ca === null ? null : { derUrl: `http://ip.${rt.cloud}/ca.crt`, pemUrl: `http://ip.${rt.cloud}/ca.pem`, subject: i.ca.subject, sha256: i.ca.sha256 },
  };
}

/** isExemptHost tells whether the status URL itself is on the authentication exemption list. */
function isExemptHost(rt: Runtime, tx: Transaction): boolean {
  const ex = rt.exemptions;
  return ex.hosts.matches(tx.host) || (ex.urls.size > 0 && ex.urls.matches(tx.host, tx.url));
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/**
 * pacUrls lists the PAC URLs a user can set: the proxy listener's own `/proxy.pac`, which works from
 * any client at a known location without DNS, then `pac.<cloud>`, which needs a DNS name for it. A
 * proxy listening on a wildcard is named by the address this request reached the node on.
 */
export function pacUrls(rt: Runtime, proxy: Address | null, localAddress: string): string[] {
  const urls: string[] = [];
  if (proxy !== null) {
    const host = normalizeIp(WILDCARD.has(proxy.address) ? localAddress : proxy.address);
    if (host !== '') urls.push(`http://${host.includes(':') ? `[${host}]` : host}:${proxy.port}/proxy.pac`);
  }
  urls.push(`http://pac.${rt.cloud}/proxy.pac`);
  return urls;
}
