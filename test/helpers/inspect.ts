/**
 * inspect: clients and origins for TLS-inspection tests.
 *
 *   client --CONNECT host:port--> Tollgate --200--> TLS (trusting the test's Tollgate CA only) --> HTTP/1.1
 *   origin: an https server with a certificate from a CA of the test's own (good, expired, wrong name, unknown issuer)
 *
 * Trust is given per connection (`ca`), never process-wide.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { checkCa, createCa, type CertificateAuthority } from '../../src/tls/ca.js';
import { LeafMinter } from '../../src/tls/leaf.js';

/** tunnelTls opens CONNECT authority through the proxy and runs TLS over it, verifying against `ca`. */
export function tunnelTls(proxyPort: number, authority: string, opts: { ca: string | string[]; servername?: string; localAddress?: string; alpn?: string[] }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: proxyPort, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    sock.setTimeout(10_000, () => sock.destroy(new Error(`CONNECT ${authority} timed out`)));
    sock.once('error', reject);
    sock.once('connect', () => sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    let head = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      head = Buffer.concat([head, c]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head.toString('latin1'))?.[1] ?? 0);
      if (status !== 200) {
        sock.destroy();
        return reject(Object.assign(new Error(`CONNECT ${authority}: ${head.toString('latin1').split('\r\n')[0]}`), { status, reply: head.toString('latin1') }));
      }
      sock.setTimeout(0);
      const host = authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      const servername = opts.servername ?? (net.isIP(host) === 0 ? host : undefined);
      const t = tls.connect({ socket: sock, ca: opts.ca, ...(servername !== undefined ? { servername } : {}), ALPNProtocols: opts.alpn ?? ['http/1.1'] });
      t.once('secureConnect', () => {
        t.off('error', reject);
        resolve(t);
      });
      t.once('error', reject);
    };
    sock.on('data', onData);
  });
}

/**
 * InspectingAgent sends https requests through the proxy's CONNECT with our CA as the only trust.
 * With keepAlive, several requests share one inspected connection.
 */
export class InspectingAgent extends http.Agent {
  constructor(
    private readonly proxyPort: number,
    private readonly ca: string,
    private readonly localAddress?: string,
    keepAlive = false,
  ) {
    super({ keepAlive, maxSockets: 1 });
  }
  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, stream: import('node:stream').Duplex) => void): undefined {
    const authority = `${options.host}:${options.port}`;
    tunnelTls(this.proxyPort, authority, { ca: this.ca, ...(this.localAddress ? { localAddress: this.localAddress } : {}) }).then(
      (s) => cb?.(null, s),
      (err: Error) => cb?.(err, undefined as never),
    );
    return undefined;
  }
}

/** Reply is a buffered response. */
export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** httpsVia sends one https request through the proxy (the agent decides the connection). */
export function httpsVia(agent: http.Agent, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: u.hostname, port: Number(u.port || 443), method: opts.method ?? 'GET', path: `${u.pathname}${u.search}`, headers: { host: u.host, ...opts.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** OriginCa is a CA of the test's own for origins, and the certificates it can make. */
export interface OriginCa {
  readonly ca: CertificateAuthority;
  readonly certPem: string;
  /** leaf mints a certificate for `host` (valid now, or as of `at`, so it can be expired today). */
  leaf(host: string, at?: number): Promise<tls.SecureContext>;
}

/** originCa makes a throwaway CA for test origins. */
export async function originCa(name = 'Test origin CA'): Promise<OriginCa> {
  const made = createCa({ keyType: 'p256', commonName: name });
  const ca = checkCa(made.certPem, made.keyPem, new Date(), name);
  return {
    ca,
    certPem: made.certPem,
    async leaf(host: string, at?: number) {
      const minter = new LeafMinter({ ca, validityDays: 30, ...(at !== undefined ? { now: () => at } : {}) });
      return (await minter.leaf(host)).context;
    },
  };
}

/** HttpsOrigin is a running https origin that answers what it was asked, with a label. */
export interface HttpsOrigin {
  readonly port: number;
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders; alpn: string | false | null; servername: string | false }[];
  close(): Promise<void>;
}

/** startHttpsOrigin serves `label` and the request it saw (JSON) over TLS with the given certificate, whatever name is asked for. */
export async function startHttpsOrigin(context: tls.SecureContext, label: string, at: { host: string; port: number } = { host: '127.0.0.1', port: 0 }): Promise<HttpsOrigin> {
  const seen: HttpsOrigin['seen'] = [];
  const server = https.createServer({ SNICallback: (_name, cb) => cb(null, context), ALPNProtocols: ['h2', 'http/1.1'] }, (req, res) => {
    const s = req.socket as tls.TLSSocket;
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, alpn: s.alpnProtocol, servername: (s as unknown as { servername: string | false }).servername };
    seen.push(entry);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ label, method: entry.method, url: entry.url, cookie: req.headers.cookie ?? null, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'set-cookie': 'origin=1; Path=/' }).end(body);
    });
  });
  // WebSocket over TLS (wss): an echo, as the plain origin's.
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const s = req.socket as tls.TLSSocket;
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, alpn: s.alpnProtocol, servername: (s as unknown as { servername: string | false }).servername });
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data) => ws.send(`echo:${String(data)}`)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise((r) => {
      wss.close();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** CurlResult is what one curl run gave. */
export interface CurlResult {
  readonly exit: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** curlVia runs curl through the proxy; trust is given with `--cacert` in args, for this run only. */
export function curlVia(proxyPort: number, args: string[], timeoutMs = 20_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '--proxy', `http://127.0.0.1:${proxyPort}`, '--noproxy', '', ...args], { timeout: timeoutMs + 2000 }, (err, stdout, stderr) => {
      const exit = err === null ? 0 : typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : -1;
      resolve({ exit, stdout, stderr });
    });
  });
}
