/**
 * One node, two worker processes sharing its listeners (`workers: 2`), on the embedded store and on
 * Redis: a sign-in served by one worker is honoured by the other, a logout handled by one is seen
 * by the other within a second, /metrics sums both, and a killed worker is replaced while requests
 * keep being served.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, until, type RedisServer } from '../helpers/redis.js';
import { startOrigin } from '../helpers/origin.js';
import { startNode } from '../helpers/node.js';
import { FlowClient, startLabIdpFixture } from '../helpers/flow.js';
import { controlCall } from '../helpers/tollgate.js';
import type { ConfigInput } from '../../src/config/schema.js';

const CLOUD = 'tollgate.test';

interface Status {
  authenticated: boolean;
  configVersion: number;
  worker: { id: number; pid: number } | null;
  user: { loginName: string } | null;
  logoutCsrf: string | null;
}

for (const kind of ['embedded', 'redis'] as const) {
  t.test(`two workers on the ${kind} store`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-workers-'));
    const redis: RedisServer | null = kind === 'redis' ? await startRedis() : null;
    const origin = await startOrigin();
    const lab = await startLabIdpFixture({ id: 'lab' });
    const config: ConfigInput = {
      workers: 2,
      store: redis !== null ? { type: 'redis', url: redis.url } : { type: 'embedded', path: join(dir, 'data') },
      logging: { level: 'info', accessLog: join(dir, 'access.log') },
      limits: { shutdownGraceMs: 1000 },
      locations: [{ name: 'lab', ips: ['127.0.0.0/26'], enforceAuthentication: true, surrogate: { enabled: true } }],
      hosts: { 'www.origin-a.test': '127.0.0.1' },
      idps: [lab.config()],
    };
    const node = await startNode(dir, 'node-w', config);
    t.teardown(async () => {
      await node.stop();
      await Promise.all([lab.close(), origin.close()]);
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await node.waitFor((l) => l.msg === 'worker serving' && l.worker === 2, 'worker 2 serving');
    await node.waitFor((l) => l.msg === 'worker serving' && l.worker === 1, 'worker 1 serving');

    const site = `http://www.origin-a.test:${origin.port}/hello`;
    const alice = new FlowClient(node.proxyPort, '127.0.0.10');
    const status = async (c: FlowClient): Promise<Status> => JSON.parse((await c.request(`http://ip.${CLOUD}/`, { headers: { accept: 'application/json' } })).body) as Status;
    /** sample asks the status page over fresh connections until both workers have answered. */
    const sample = async (c: FlowClient): Promise<Map<number, Status>> => {
      const seen = new Map<number, Status>();
      for (let i = 0; i < 40 && seen.size < 2; i++) {
        const s = await status(c);
        if (s.worker !== null) seen.set(s.worker.id, s);
      }
      return seen;
    };

    const signedIn = await alice.signIn(site, 'alice@example.com', 'alice-pw');
    t.equal(signedIn.reply.status, 200, 'signed in');
    const both = await sample(alice);
    t.same([...both.keys()].sort(), [1, 2], 'both workers answered the status page');
    for (const [id, s] of both) t.equal(s.user?.loginName, 'alice@example.com', `worker ${id} knows the user whichever worker served the sign-in`);
    t.not(both.get(1)!.worker!.pid, both.get(2)!.worker!.pid, 'two processes');
    for (let i = 0; i < 6; i++) t.equal((await alice.request(site)).status, 200, 'the site passes on every connection');

    // Logout through one worker; within a second neither worker attributes her.
    const csrf = (await status(alice)).logoutCsrf!;
    t.equal((await alice.request(`http://ip.${CLOUD}/logout`, { form: { csrf } })).status, 303, 'signed out');
    const out = Date.now();
    const after = new FlowClient(node.proxyPort, '127.0.0.10');
    for (const [h, jar] of alice.jar) after.jar.set(h, new Map(jar));
    await until(
      async () => {
        const s = await sample(after);
        return s.size === 2 && [...s.values()].every((x) => !x.authenticated);
      },
      1000,
      'both workers see the logout',
    );
    t.ok(Date.now() - out <= 1000, `both workers saw the logout after ${Date.now() - out} ms`);

    // /metrics on the control listener counts both workers' requests.
    const metrics = await controlCall(node.controlPort, 'GET', '/metrics');
    t.equal(metrics.status, 200);
    const total = [...metrics.body.matchAll(/^tollgate_requests_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    t.ok(total >= 20, `summed request count ${total} covers the requests both workers served`);
    t.equal((await controlCall(node.controlPort, 'GET', '/readyz')).status, 200, 'ready with both workers up');

    // SIGHUP to the primary activates on every worker; an activation asked of one worker's API reaches the other.
    const primaryPid = Number((await node.waitFor((l) => l.msg === 'primary supervising workers', 'primary')).pid);
    const versions = async () => [...(await sample(alice)).values()].map((s) => s.configVersion).sort();
    t.same(await versions(), [1, 1]);
    process.kill(primaryPid, 'SIGHUP');
    await until(async () => (await versions()).join() === '2,2', 3000, 'both workers on version 2 after SIGHUP');
    t.pass('SIGHUP reached both workers');
    t.equal((await controlCall(node.controlPort, 'POST', '/admin/activate', node.admin)).status, 200, 'activated through one worker');
    await until(async () => (await versions()).join() === '3,3', 3000, 'both workers on version 3');
    t.pass('an activation through one worker reached the other');

    // Kill one worker: requests keep being served, and a new worker takes its place.
    const victim = both.get(1)!.worker!.pid;
    process.kill(victim, 'SIGKILL');
    // Connections the primary hands out in the few ms before it sees the exit are lost with the
    // worker (node:cluster's round robin); from then on the survivor takes every connection.
    await node.waitFor((l) => l.msg === 'worker exited; restarting it' && l.pid === victim, 'the supervisor saw the crash');
    const ready = await controlCall(node.controlPort, 'GET', '/readyz');
    t.equal(ready.status, 503, 'not ready while a worker is missing (it restarts after a backoff)');
    t.match(ready.body, /workers_not_ready|1 of 2 workers/);
    const bob = new FlowClient(node.proxyPort, '127.0.0.11');
    for (let i = 0; i < 5; i++) t.equal((await bob.request(`http://ip.${CLOUD}/`, { headers: { accept: 'application/json' } })).status, 200, 'served while a worker is down');
    await until(
      async () => {
        const s = await sample(bob);
        return s.size === 2 && [...s.values()].every((x) => x.worker!.pid !== victim);
      },
      15_000,
      'a replacement worker serves',
    );
    t.pass('the killed worker was replaced');
    // The replacement reports ready to the primary a moment after it first serves.
    await until(async () => (await controlCall(node.controlPort, 'GET', '/readyz')).status === 200, 5000, 'ready again');
    t.pass('ready again');
    t.match((await controlCall(node.controlPort, 'GET', '/metrics')).body, /^tollgate_config_version 3$/m, 'the config version is not summed over workers');

    // SIGTERM to the primary stops every worker, and the node exits.
    const pids = [...(await sample(bob)).values()].map((s) => s.worker!.pid);
    const stopped = Date.now();
    await node.stop();
    t.ok(Date.now() - stopped < 8000, 'the node exited on SIGTERM (not killed after the grace period)');
    for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
  });
}
