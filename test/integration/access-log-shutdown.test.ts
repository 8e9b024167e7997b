import t from 'tap';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../helpers/origin.js';
import { startNode } from '../helpers/node.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-access-log-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** get sends one absolute-form GET through the proxy on a keep-alive agent; resolves with the status once the body is complete. */
function get(proxyPort: number, url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('a SIGTERM under load keeps the access-log line of every request that was answered', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const accessLog = join(dir, 'access.log');
  const node = await startNode(dir, 'n1', {
    store: { type: 'embedded', path: join(dir, 'data') },
    locations: [{ name: 'lab', ips: ['127.0.0.1/32'] }],
    logging: { level: 'info', accessLog },
    limits: { shutdownGraceMs: 5000 },
  });
  t.teardown(() => node.stop());

  const answered: string[] = [];
  let seq = 0;
  let stopping = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(() => agent.destroy());
  // 16 clients in a loop, each URL unique, until the proxy stops answering.
  const loop = async () => {
    for (;;) {
      const url = `${origin.url}/hello?n=${seq++}`;
      try {
        if ((await get(node.proxyPort, url, agent)) === 200) answered.push(url);
      } catch {
        if (stopping) return;
      }
    }
  };
  const loops = Array.from({ length: 16 }, loop);
  // Enough requests that the lines sit in the log's buffer, not yet written, when the signal comes.
  while (answered.length < 300) await new Promise((r) => setTimeout(r, 5));
  stopping = true;
  await node.stop();
  await Promise.all(loops);

  const lines = readFileSync(accessLog, 'utf8').split('\n').filter((l) => l !== '');
  const logged = new Set(lines.map((l) => (JSON.parse(l) as { url: string }).url));
  const missing = answered.filter((u) => !logged.has(u));
  t.ok(answered.length >= 300, `${answered.length} requests answered`);
  t.same(missing.slice(0, 5), [], `every answered request has its line (${missing.length} of ${answered.length} missing)`);
});
