/**
 * origin: a real HTTP origin on 127.0.0.1:0 for integration tests, with routes that exercise
 * streaming, chunking, HEAD, 304, slowness, resets and WebSocket echo.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';

/** Origin is a running origin server and what it saw. */
export interface Origin {
  readonly port: number;
  readonly url: string;
  /** Headers of every request the origin received, in order. */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  /** Set when the origin saw a request body aborted by the peer. */
  readonly aborted: string[];
  close(): Promise<void>;
}

/** startOrigin starts the origin. */
export async function startOrigin(host = '127.0.0.1'): Promise<Origin> {
  const seen: Origin['seen'] = [];
  const aborted: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://origin');
    switch (url.pathname) {
      case '/hello':
        res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'yes', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5', 'set-cookie': ['a=1', 'b=2'] });
        res.end('hello world\n');
        return;
      case '/set-cookie':
        // An origin trying to set a cookie of the name it is given, next to one of its own.
        res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': [`${url.searchParams.get('name') ?? 'x'}=planted; Path=/`, 'own=1'] });
        res.end('cookies set\n');
        return;
      case '/echo': {
        // Streams the request body back, with a digest of what arrived.
        let n = 0;
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => {
          n += c.length;
          chunks.push(c);
        });
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-received': String(n), 'x-te': String(req.headers['transfer-encoding'] ?? '') });
          res.end(body);
        });
        req.on('aborted', () => aborted.push(url.pathname));
        return;
      }
      case '/chunked': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let i = 0;
        const t = setInterval(() => {
          res.write(`chunk ${i}\n`);
          if (++i === 5) {
            clearInterval(t);
            res.end();
          }
        }, 5);
        return;
      }
      case '/etag':
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"' });
          res.end();
        } else {
          res.writeHead(200, { etag: '"v1"', 'content-type': 'text/plain', 'content-length': '6' });
          res.end('fresh\n');
        }
        return;
      case '/slow': {
        const ms = Number(url.searchParams.get('ms') ?? '2000');
        const t = setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('late\n');
        }, ms);
        res.on('close', () => clearTimeout(t));
        return;
      }
      case '/hang-body': {
        // Sends headers and part of the body, then stalls until the client goes away.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        res.on('close', () => aborted.push(url.pathname));
        return;
      }
      case '/reset':
        req.socket.destroy();
        return;
      case '/big': {
        const size = Number(url.searchParams.get('bytes') ?? String(1 << 20));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
        const chunk = Buffer.alloc(64 * 1024, 120);
        let left = size;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such path\n');
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${String(data)}`));
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    seen,
    aborted,
    close: () =>
      new Promise<void>((r) => {
        wss.close();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
