import t from 'tap';
import { upstreamFailure } from '../../src/proxy/errno.js';

t.test('errno → status table', async (t) => {
  const cases: [unknown, number, string][] = [
    [{ code: 'ENOTFOUND' }, 502, 'dns_failure'],
    [{ code: 'EAI_AGAIN' }, 502, 'dns_failure'],
    [{ code: 'ECONNREFUSED' }, 502, 'connection_refused'],
    [{ code: 'ELOOP_SELF' }, 403, 'loop_detected'],
    [{ code: 'ECONNRESET' }, 502, 'connection_reset'],
    [{ code: 'EPIPE' }, 502, 'connection_reset'],
    [{ code: 'ETIMEDOUT' }, 504, 'upstream_timeout'],
    [{ code: 'EHOSTUNREACH' }, 502, 'host_unreachable'],
    [{ code: 'HPE_INVALID_STATUS' }, 502, 'bad_upstream_response'],
    [{ code: 'ERR_INVALID_CHAR' }, 502, 'bad_request_header'],
    [{ code: 'HPE_INVALID_EOF_STATE' }, 502, 'bad_upstream_response'],
    [{ code: 'EWHATEVER' }, 502, 'upstream_error'],
    [new Error('no code'), 502, 'upstream_error'],
    [null, 502, 'upstream_error'],
  ];
  for (const [err, status, code] of cases) {
    const f = upstreamFailure(err);
    t.equal(f.status, status, `${JSON.stringify(err)} status`);
    t.equal(f.code, code, `${JSON.stringify(err)} code`);
    t.ok(f.reason.length > 10 && !f.reason.includes('undefined'));
  }
});
