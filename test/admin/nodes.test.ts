import t from 'tap';
import { add, since, ZERO_COUNTS, type Counts } from '../../src/admin/nodes.js';

const c = (requests: number, signIns: Record<string, number>, scim = 0, blockedBy: Record<string, number> = {}): Counts => ({ requests, errors: requests > 10 ? 1 : 0, blocked: Math.floor(requests / 2), blockedBy, signIns, scim });

t.test('since is what a node counted between two samples; add sums nodes', async (t) => {
  t.same(since(c(12, { ok: 3, SAML_REPLAY: 1 }, 5), c(4, { ok: 1, SAML_REPLAY: 1 }, 2)), { requests: 8, errors: 1, blocked: 4, blockedBy: {}, signIns: { ok: 2 }, scim: 3 }, 'outcomes that did not move are left out');
  t.same(since(c(3, { ok: 1 }), ZERO_COUNTS), c(3, { ok: 1 }), 'a young node counts from its start');
  t.same(add(c(2, { ok: 1 }), c(4, { ok: 2, SAML_EXPIRED: 1 }, 1)), { requests: 6, errors: 0, blocked: 3, blockedBy: {}, signIns: { ok: 3, SAML_EXPIRED: 1 }, scim: 1 }, 'outcomes of either node');
  t.same(add(ZERO_COUNTS, ZERO_COUNTS), ZERO_COUNTS);
});

t.test('blocked transactions are tallied by reason, over time and over nodes', async (t) => {
  const then = c(4, {}, 0, { unknown_source: 1 });
  const now = c(12, {}, 0, { unknown_source: 3, loop_detected: 2, auth_required: 0 });
  t.same(since(now, then).blockedBy, { unknown_source: 2, loop_detected: 2 }, 'what the hour added; reasons that did not move are left out');
  t.same(add(now, c(2, {}, 0, { loop_detected: 1, port_not_allowed: 4 })).blockedBy, { unknown_source: 3, loop_detected: 3, auth_required: 0, port_not_allowed: 4 }, 'summed over nodes');
});
