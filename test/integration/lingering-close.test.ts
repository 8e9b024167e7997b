/**
 * An early error reply (413, 431, 429) reaches a client that is still sending: the server answers,
 * half-closes and drains what the client still writes, so the client sees the status and no reset.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { startTestTollgate, testConfig } from '../helpers/tollgate.js';

const MiB = 1024 * 1024;
const ROUNDS = 20;
const ERR = 'urn:ietf:params:scim:api:messages:2.0:Error';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-linger-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'okta.pem'), makeSigningPair('Lab IdP').certPem);

const tg = await startTestTollgate((d) =>
  testConfig(d, {
    orgId: '37146169',
    // scimRateLimit 0 (no limit): the limit would answer 429 before the body is looked at; these tests want the 413.
    idps: [{ id: 'okta', name: 'Okta', ssoUrl: 'https://example.okta.test/app/sso/saml', certificate: join(dir, 'okta.pem'), entityId: 'http://www.okta.com/exk1', default: true, provisioning: 'scim', scimRateLimit: 0 }],
    limits: { maxConnectionsPerIp: 2, maxHeaderBytes: 8192 },
  }),
);
t.teardown(() => tg.close());

const token = await new Promise<string>((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port: tg.controlPort, method: 'POST', path: '/admin/scim/token?idp=okta', headers: { authorization: `Bearer ${tg.adminToken}` }, agent: false }, (res) => {
    let b = '';
    res.on('data', (c: Buffer) => (b += c.toString()));
    res.on('end', () => resolve((JSON.parse(b) as { token: string }).token));
  });
  req.on('error', reject);
  req.end();
});
const usersPath = '/37146169/okta/scim/v2/Users';

/** Sent is what a raw client that wrote everything it meant to saw: the bytes read and any socket error. */
interface Sent {
  readonly reply: string;
  readonly error: string | undefined;
  readonly written: number;
}

/**
 * sendWhileReading writes `head`, then `bytes` more bytes (as chunks of `chunk`, waiting for the
 * socket to drain), reading all along; then ends its side and waits for the server to close.
 */
function sendWhileReading(port: number, head: string, bytes: number, opts: { chunk?: (n: number) => Buffer; localAddress?: string; pauseMs?: number } = {}): Promise<Sent> {
  const chunk = opts.chunk ?? ((n: number) => Buffer.alloc(n, 'a'));
  return new Promise((resolve) => {
    // allowHalfOpen: the server's FIN after its reply does not stop this client from writing.
    const s = net.connect({ host: '127.0.0.1', port, localAddress: opts.localAddress, allowHalfOpen: true });
    let reply = '';
    let error: string | undefined;
    let written = 0;
    const guard = setTimeout(() => s.destroy(), 20_000);
    s.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    s.on('close', () => {
      clearTimeout(guard);
      resolve({ reply, error, written });
    });
    const pump = (): void => {
      while (written < bytes && !s.destroyed) {
        const n = Math.min(64 * 1024, bytes - written);
        written += n;
        if (!s.write(chunk(n))) return void s.once('drain', pump);
        // A client on a slow link: the next chunk leaves after the reply has arrived.
        if (opts.pauseMs !== undefined) return void setTimeout(pump, opts.pauseMs);
      }
      if (!s.destroyed) s.end();
    };
    s.write(head, (e) => {
      if (e === null || e === undefined) pump();
    });
  });
}

/** statusOf is the status code of a raw HTTP/1.1 reply, or 0. */
const statusOf = (reply: string): number => Number(/^HTTP\/1\.1 (\d{3}) /.exec(reply)?.[1] ?? 0);

/** bodyOf is the body of a raw HTTP/1.1 reply with Content-Length, or null when it did not all arrive. */
function bodyOf(reply: string): string | null {
  const end = reply.indexOf('\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/i.exec(reply.slice(0, end));
  if (end < 0 || length === null) return null;
  const body = reply.slice(end + 4);
  return body.length === Number(length[1]) ? body : null;
}

/** TapTest is the type of a subtest's `t`. */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

/** readable checks that a client which wrote all `bytes` read the whole `status` reply with `code`, and saw no reset. */
function readable(t: TapTest, name: string, r: Sent, status: number, code: string, bytes: number): void {
  t.equal(statusOf(r.reply), status, `${name}: ${status}`);
  t.match(r.reply.toLowerCase(), `\r\nx-tollgate-error: ${code}\r\n`, `${name}: with its error code`);
  t.not(bodyOf(r.reply), null, `${name}: the whole reply arrived`);
  t.equal(r.error, undefined, `${name}: no reset or EPIPE while writing`);
  t.equal(r.written, bytes, `${name}: the client wrote everything`);
}

function scimHead(framing: string): string {
  return (
    `POST ${usersPath} HTTP/1.1\r\nHost: 127.0.0.1:${tg.controlPort}\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/scim+json\r\n${framing}\r\n`
  );
}

t.test('an 8 MiB SCIM body sent with fetch gets a readable 413, every time', async (t) => {
  const body = Buffer.alloc(8 * MiB, 'a');
  const seen: string[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${tg.controlPort}${usersPath}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
        body,
      });
      const json = (await res.json()) as { schemas?: string[]; status?: string };
      seen.push(res.status === 413 && json.status === '413' && json.schemas?.[0] === ERR ? 'ok' : `status ${res.status}`);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      seen.push(`fetch failed: ${e.cause?.code ?? e.message}`);
    }
  }
  t.same(seen, Array(ROUNDS).fill('ok'), `${ROUNDS} of ${ROUNDS} read the 413 in the SCIM error schema`);
});

t.test('an 8 MiB SCIM body from a raw socket that writes it all gets a readable 413 and no reset, every time', async (t) => {
  const framings: [string, string, (n: number) => Buffer][] = [
    ['declared too large', `Content-Length: ${8 * MiB}\r\n`, (n) => Buffer.alloc(n, 'a')],
    // Chunked: the limit is found while reading, after the first MiB has arrived.
    ['growing past the limit', 'Transfer-Encoding: chunked\r\n', (n) => Buffer.concat([Buffer.from(`${(n - 8).toString(16).padStart(4, '0')}\r\n`), Buffer.alloc(n - 8, 'a'), Buffer.from('\r\n')])],
  ];
  for (const [name, framing, chunk] of framings) {
    const seen: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await sendWhileReading(tg.controlPort, scimHead(framing), 8 * MiB, { chunk });
      const body = bodyOf(r.reply);
      const json = body === null ? null : (JSON.parse(body) as { schemas?: string[]; status?: string });
      const ok = statusOf(r.reply) === 413 && json?.status === '413' && json.schemas?.[0] === ERR && /\r\nconnection: close\r\n/i.test(r.reply);
      seen.push(ok && r.error === undefined && r.written === 8 * MiB ? 'ok' : `status ${statusOf(r.reply)}, error ${r.error ?? 'none'}, wrote ${r.written}`);
    }
    t.same(seen, Array(ROUNDS).fill('ok'), `${name}: ${ROUNDS} of ${ROUNDS} wrote all 8 MiB, then read the whole 413`);
  }
});

t.test('an oversized request header gets a readable 431 on both listeners while the client keeps writing', async (t) => {
  const listeners: [string, number, string][] = [
    ['control', tg.controlPort, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: `],
    ['proxy', tg.proxyPort, `GET http://ip.tollgate.test/ HTTP/1.1\r\nHost: ip.tollgate.test\r\nX-Big: `],
  ];
  for (const [name, port, head] of listeners) {
    readable(t, name, await sendWhileReading(port, head, 4 * MiB), 431, 'header_too_large', 4 * MiB);
  }
});

t.test('a connection over the per-IP cap gets a readable 429 while the client keeps writing', async (t) => {
  const from = '127.0.0.40';
  // Two connections that the proxy has answered, so both count against the cap of 2.
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 2; i++) {
    const s = net.connect({ host: '127.0.0.1', port: tg.proxyPort, localAddress: from });
    held.push(s);
    await new Promise<void>((resolve) => {
      s.once('data', () => resolve());
      s.write('GET http://ip.tollgate.test/ HTTP/1.1\r\nHost: ip.tollgate.test\r\nAccept: application/json\r\n\r\n');
    });
  }
  // Half a MiB over half a second: a connection over the cap lingers briefly (BRIEF_LINGER), since it
  // holds a socket; the pauses make the client write after the reply, as a slower link would.
  const head = `POST http://ip.tollgate.test/upload HTTP/1.1\r\nHost: ip.tollgate.test\r\nContent-Length: ${MiB / 2}\r\n\r\n`;
  const r = await sendWhileReading(tg.proxyPort, head, MiB / 2, { localAddress: from, pauseMs: 60 });
  readable(t, 'over the cap', r, 429, 'too_many_connections', MiB / 2);
});

t.test('an 8 MiB form posted to the ACS gets a readable 413 on both listeners while the client keeps writing', async (t) => {
  const form = `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${8 * MiB}\r\n\r\n`;
  const listeners: [string, number, string][] = [
    ['control', tg.controlPort, `POST /sfc_sso HTTP/1.1\r\nHost: 127.0.0.1\r\n${form}`],
    ['proxy', tg.proxyPort, `POST http://login.tollgate.test/sfc_sso HTTP/1.1\r\nHost: login.tollgate.test\r\n${form}`],
  ];
  for (const [name, port, head] of listeners) {
    readable(t, name, await sendWhileReading(port, head, 8 * MiB), 413, 'body_too_large', 8 * MiB);
  }
});
