/**
 * naive-proxy: the runtime's own floor, a forward proxy with no features, run as a bench contender.
 *
 *   GET http://host/path  -> node:http client (keep-alive agent) -> origin, response piped back
 *   CONNECT host:port     -> net.connect -> "200" -> bytes piped both ways
 *
 * No identification, no policy, no access log, no header cleaning beyond what a forward proxy must
 * do (hop-by-hop headers and the absolute-form target). It is what a hundred lines of Node give, so
 * the gap between it and Tollgate is what Tollgate's features cost. Loopback only; argv[2] is the
 * port to listen on; it prints `listening` once it does. Plain JavaScript, so no TypeScript loader
 * adds to its memory or start-up.
 */
import http from 'node:http';
import net from 'node:net';

const HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding'];
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });

function hopless(h) {
  const out = { ...h };
  for (const k of HOP) delete out[k];
  return out;
}

function onRequest(req, res) {
  let url;
  try {
    url = new URL(req.url ?? '');
  } catch {
    res.writeHead(400).end();
    return;
  }
  const headers = hopless(req.headers);
  if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
  const up = http.request({ host: url.hostname, port: url.port || 80, method: req.method, path: url.pathname + url.search, headers, agent }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, hopless(ur.headers));
    ur.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
}

function onConnect(req, client, head) {
  const m = /^([^:]+):(\d+)$/.exec(req.url ?? '');
  if (m === null) {
    client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const up = net.connect({ host: m[1], port: Number(m[2]), allowHalfOpen: true, noDelay: true }, () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) up.write(head);
    client.pipe(up);
    up.pipe(client);
  });
  up.on('error', () => {
    if (client.writable && up.connecting) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    else client.destroy();
  });
  client.on('error', () => up.destroy());
  client.on('close', () => up.destroy());
  up.on('close', () => client.destroy());
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, onRequest);
server.on('connect', onConnect);
server.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0), backlog: 4096 }, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
