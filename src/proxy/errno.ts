/**
 * errno: the one table that maps an upstream failure to what the client sees.
 *
 *   Client -> Proxy -> (DNS | connect | read) fails -> status + stable code + one-line reason
 */

/** UpstreamFailure is how one upstream error is reported to the client and the access log. */
export interface UpstreamFailure {
  readonly status: 403 | 502 | 504;
  /** Stable code for logs, metrics and the error page. */
  readonly code: string;
  /** One line a user can act on. */
  readonly reason: string;
}

const TABLE: Record<string, UpstreamFailure> = {
  // dial refuses targets that resolve to our own listeners: a client error, not an upstream one.
  ELOOP_SELF: { status: 403, code: 'loop_detected', reason: 'The request is addressed to this proxy itself.' },
  ENOTFOUND: { status: 502, code: 'dns_failure', reason: 'The host name could not be resolved.' },
  EAI_AGAIN: { status: 502, code: 'dns_failure', reason: 'The host name could not be resolved (temporary DNS failure).' },
  EAI_FAIL: { status: 502, code: 'dns_failure', reason: 'The host name could not be resolved.' },
  ENODATA: { status: 502, code: 'dns_failure', reason: 'The host name has no address.' },
  ECONNREFUSED: { status: 502, code: 'connection_refused', reason: 'The server refused the connection.' },
  ECONNRESET: { status: 502, code: 'connection_reset', reason: 'The server reset the connection.' },
  EPIPE: { status: 502, code: 'connection_reset', reason: 'The server closed the connection while we were sending.' },
  ECONNABORTED: { status: 502, code: 'connection_reset', reason: 'The connection to the server was aborted.' },
  EHOSTUNREACH: { status: 502, code: 'host_unreachable', reason: 'The server is unreachable.' },
  ENETUNREACH: { status: 502, code: 'network_unreachable', reason: 'The network of the server is unreachable.' },
  ETIMEDOUT: { status: 504, code: 'upstream_timeout', reason: 'The server did not answer in time.' },
  ESOCKETTIMEDOUT: { status: 504, code: 'upstream_timeout', reason: 'The server did not answer in time.' },
  HPE_INVALID_CONSTANT: { status: 502, code: 'bad_upstream_response', reason: 'The server sent a response that is not valid HTTP.' },
  // A request header value that cannot go on the wire (the forwarder checks before it writes).
  ERR_INVALID_CHAR: { status: 502, code: 'bad_request_header', reason: 'The request carries a header that cannot be sent on.' },
  // Upstream TLS (inspected requests): the certificate check failed, by OpenSSL's and Node's codes.
  CERT_HAS_EXPIRED: CERT('upstream_cert_expired', "The server's certificate has expired."),
  CERT_NOT_YET_VALID: CERT('upstream_cert_not_yet_valid', "The server's certificate is not valid yet."),
  ERR_TLS_CERT_ALTNAME_INVALID: CERT('upstream_cert_wrong_name', "The server's certificate is for another name than this site."),
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: CERT('upstream_cert_unknown_issuer', "The server's certificate is not issued by a trusted authority."),
  UNABLE_TO_GET_ISSUER_CERT: CERT('upstream_cert_unknown_issuer', "The server's certificate is not issued by a trusted authority."),
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: CERT('upstream_cert_unknown_issuer', "The server's certificate is not issued by a trusted authority."),
  SELF_SIGNED_CERT_IN_CHAIN: CERT('upstream_cert_unknown_issuer', "The server's certificate chains to an authority that is not trusted."),
  DEPTH_ZERO_SELF_SIGNED_CERT: CERT('upstream_cert_unknown_issuer', "The server's certificate is self-signed."),
  CERT_UNTRUSTED: CERT('upstream_cert_unknown_issuer', "The server's certificate is not trusted."),
  CERT_SIGNATURE_FAILURE: CERT('upstream_cert_invalid', "The server's certificate signature does not verify."),
  CERT_REVOKED: CERT('upstream_cert_revoked', "The server's certificate has been revoked."),
  ERR_SSL_WRONG_VERSION_NUMBER: { status: 502, code: 'upstream_not_tls', reason: 'The server did not answer in TLS.' },
};

/** CERT is a failed upstream certificate check: the request is blocked, never passed on unchecked. */
function CERT(code: string, reason: string): UpstreamFailure {
  return { status: 502, code, reason: `${reason} Tollgate did not pass the request on.` };
}

const TLS_FAILED: UpstreamFailure = { status: 502, code: 'upstream_tls_failed', reason: 'A secure connection to the server could not be made.' };
const FALLBACK: UpstreamFailure = { status: 502, code: 'upstream_error', reason: 'The request to the server failed.' };

/** isUpstreamFault tells whether a failure is the origin's (counted as an upstream error) or the client's. */
export function isUpstreamFault(f: UpstreamFailure): boolean {
  return f.status !== 403;
}

/** upstreamFailure maps a Node error (by its `code`, or the HTTP parser's) to the client-facing answer. */
export function upstreamFailure(err: unknown): UpstreamFailure {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string') {
    const hit = TABLE[code];
    if (hit) return hit;
    if (code.startsWith('HPE_')) return TABLE.HPE_INVALID_CONSTANT!;
    if (code.startsWith('ERR_SSL_')) return TLS_FAILED;
  }
  return FALLBACK;
}
