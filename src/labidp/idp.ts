/**
 * idp: a small SAML 2.0 IdP for labs and tests, on samlify. NOT FOR PRODUCTION.
 *
 *   SP --302 (HTTP-Redirect, AuthnRequest)--> GET /sso -> login form
 *   browser --POST /login (user, password)--> auto-submitting form --POST SAMLResponse--> SP ACS
 *
 * It signs Response and Assertion with RSA-SHA256 as Okta does by default, with NameID in email
 * format and the attributes DisplayName, memberOf (one value per group) and Department. Users and
 * their passwords live in memory; there is no rate limit, lockout or MFA.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import * as samlify from 'samlify';
import { escapeHtml } from '../http/errors.js';
import { guardLabXml } from './xmlguard.js';
import { findLabUser, type LabUser } from './users.js';
import { labIdpMetadataXml } from './metadata.js';
import { buildLoginResponseXml } from './response.js';

export { loadLabUsers, parseLabUsers, type LabUser } from './users.js';

/** LAB_IDP_BANNER labels every page and log line of the lab IdP. */
export const LAB_IDP_BANNER = 'Tollgate lab IdP - NOT FOR PRODUCTION';

/** LabIdpOptions configures one lab IdP for one SP. */
export interface LabIdpOptions {
  readonly host: string;
  /** port 0 picks a free one. */
  readonly port: number;
  readonly users: readonly LabUser[];
  readonly spEntityId: string;
  readonly acsUrl: string;
  /** keyPem/certPem sign responses; a fresh RSA-2048 pair and self-signed cert are made when absent. */
  readonly keyPem?: string;
  readonly certPem?: string;
  /** entityId defaults to `http://<host>:<port>/metadata`. */
  readonly entityId?: string;
  /**
   * signResponse / signAssertion (both default true, as Okta) choose what is signed. samlify always
   * signs the Response when the Assertion is not signed, so both false still signs the Response.
   */
  readonly signResponse?: boolean;
  readonly signAssertion?: boolean;
  /** clockOffsetMs shifts the IdP's clock, to test expired and not-yet-valid assertions. */
  readonly clockOffsetMs?: number;
  /** lifetimeMs is how long an assertion is valid. Default 5 min. */
  readonly lifetimeMs?: number;
  /** log hears one line per login; default silent. */
  readonly log?: (line: string) => void;
}

/** LabIdp is a running lab IdP. */
export interface LabIdp {
  readonly ssoUrl: string;
  readonly entityId: string;
  readonly certPem: string;
  close(): Promise<void>;
}

interface Pending {
  readonly requestId: string;
  readonly relayState: string;
  readonly expires: number;
}

const PENDING_TTL_MS = 10 * 60_000;

/** startLabIdp listens on host:port and serves GET /sso, POST /login and GET /metadata. */
export async function startLabIdp(opts: LabIdpOptions): Promise<LabIdp> {
  const log = opts.log ?? (() => {});
  const { keyPem, certPem } = opts.keyPem && opts.certPem ? { keyPem: opts.keyPem, certPem: opts.certPem } : makeSigningPair();
  samlify.setSchemaValidator({ validate: guardLabXml });
  const pending = new Map<string, Pending>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`${LAB_IDP_BANNER}: ${(err as Error).message}`);
      if (!res.headersSent) page(res, 500, 'Error', '<p>The lab IdP failed; see its log.</p>');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  const entityId = opts.entityId ?? `${base}/metadata`;
  const ssoUrl = `${base}/sso`;

  const idp = samlify.IdentityProvider({
    // Our own metadata document rather than samlify's options, which warn about the missing SLO.
    metadata: labIdpMetadataXml({ entityId, ssoUrl, certPem }),
    privateKey: keyPem,
    requestSignatureAlgorithm: samlify.Constants.algorithms.signature.RSA_SHA256,
  });
  const sp = samlify.ServiceProvider({
    entityID: opts.spEntityId,
    assertionConsumerService: [{ Binding: samlify.Constants.namespace.binding.post, Location: opts.acsUrl }],
    // samlify signs the Assertion when the SP wants it, and the Response when the SP wants
    // messages signed or assertions are unsigned (so one of the two is always signed).
    wantAssertionsSigned: opts.signAssertion ?? true,
    wantMessageSigned: opts.signResponse ?? true,
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base);
    if (req.method === 'GET' && url.pathname === '/metadata') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(idp.getMetadata());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/sso') {
      const query = Object.fromEntries(url.searchParams);
      let parsed: { extract: { request?: { id?: string } } };
      try {
        parsed = (await idp.parseLoginRequest(sp, 'redirect', { query, octetString: '' })) as typeof parsed;
      } catch (err) {
        log(`${LAB_IDP_BANNER}: refused AuthnRequest: ${(err as Error).message}`);
        page(res, 400, 'Bad request', '<p>This is not a valid SAML AuthnRequest for the configured SP.</p>');
        return;
      }
      const id = randomBytes(24).toString('base64url');
      sweep(pending);
      pending.set(id, { requestId: parsed.extract.request?.id ?? '', relayState: query.RelayState ?? '', expires: Date.now() + PENDING_TTL_MS });
      loginForm(res, 200, id, '');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/login') {
      // The pending id is random, single-use and only in the form we served: it doubles as the CSRF token.
      const form = new URLSearchParams(await readBody(req, 16 * 1024));
      const id = form.get('pending') ?? '';
      const p = pending.get(id);
      if (p === undefined || p.expires < Date.now()) {
        page(res, 400, 'Sign-in expired', '<p>This sign-in expired or was already used. Go back to the site and try again.</p>');
        return;
      }
      const user = findLabUser(opts.users, form.get('username') ?? '', form.get('password') ?? '');
      if (user === null) {
        log(`${LAB_IDP_BANNER}: wrong user name or password for ${JSON.stringify(form.get('username') ?? '')}`);
        loginForm(res, 401, id, 'Wrong user name or password.');
        return;
      }
      pending.delete(id);
      const now = Date.now() + (opts.clockOffsetMs ?? 0);
      const { context } = await idp.createLoginResponse(sp, { extract: { request: { id: p.requestId } } }, 'post', { email: user.loginName }, () => {
        const built = buildLoginResponseXml({
          idpEntityId: entityId, spEntityId: opts.spEntityId, acsUrl: opts.acsUrl, inResponseTo: p.requestId,
          user, now, lifetimeMs: opts.lifetimeMs ?? 5 * 60_000,
        });
        return { id: built.id, context: built.xml };
      });
      log(`${LAB_IDP_BANNER}: signed in ${user.loginName}, posting to ${opts.acsUrl}`);
      autoPost(res, opts.acsUrl, context, p.relayState);
      return;
    }
    page(res, 404, 'Not found', '<p>Nothing here.</p>');
  }

  log(`${LAB_IDP_BANNER}: SSO URL ${ssoUrl}, entity ID ${entityId}`);
  return {
    ssoUrl,
    entityId,
    certPem,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** makeSigningPair makes an RSA-2048 key (Node's native generator) and a 1-year self-signed cert with node-forge. */
export function makeSigningPair(commonName = 'Tollgate lab IdP (NOT FOR PRODUCTION)', notAfter?: Date): { keyPem: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01' + randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = notAfter ?? new Date(Date.now() + 365 * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer([{ name: 'commonName', value: commonName }]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

function sweep(pending: Map<string, Pending>): void {
  const now = Date.now();
  for (const [k, v] of pending) if (v.expires < now) pending.delete(k);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('form too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No framing: a login form in someone else's frame is clickjacking bait.
    'x-frame-options': 'DENY',
  });
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)} - ${LAB_IDP_BANNER}</title></head>` +
      `<body style="font-family:sans-serif;max-width:30em;margin:3em auto">` +
      `<p style="background:#fdd;padding:.5em;border:1px solid #c00"><strong>${LAB_IDP_BANNER}.</strong> ` +
      `A test identity provider: do not use it for real accounts.</p><h1>${escapeHtml(title)}</h1>${body}</body></html>\n`,
  );
}

function loginForm(res: ServerResponse, status: number, pendingId: string, error: string): void {
  page(
    res,
    status,
    'Sign in',
    (error ? `<p role="alert" style="color:#c00">${escapeHtml(error)}</p>` : '') +
      `<form method="post" action="/login"><input type="hidden" name="pending" value="${escapeHtml(pendingId)}">` +
      `<p><label>User name <input name="username" type="email" autocomplete="username" required autofocus></label></p>` +
      `<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>` +
      `<p><button type="submit">Sign in</button></p></form>`,
  );
}

/** autoPost answers with the HTTP-POST binding's self-submitting form (SAML Bindings §3.5.4). */
function autoPost(res: ServerResponse, acsUrl: string, samlResponse: string, relayState: string): void {
  page(
    res,
    200,
    'Signing you in',
    `<form method="post" action="${escapeHtml(acsUrl)}" id="saml">` +
      `<input type="hidden" name="SAMLResponse" value="${escapeHtml(samlResponse)}">` +
      (relayState ? `<input type="hidden" name="RelayState" value="${escapeHtml(relayState)}">` : '') +
      `<noscript><button type="submit">Continue</button></noscript></form>` +
      `<script>document.getElementById('saml').submit()</script>`,
  );
}
