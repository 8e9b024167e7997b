/**
 * IdP metadata import: the lab IdP's own metadata, an Okta-shaped file with two signing certificates
 * (a key rollover), every way metadata can be unusable, and a response signed by either rolled key
 * accepted by the IdP the import configured.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { idpEntry, MetadataError, readIdpMetadata, writeCertificates, type MetadataCode } from '../../src/admin/idpimport.js';
import { prepareIdps } from '../../src/auth/idps.js';
import { defaultAcsUrl, spEntityId } from '../../src/auth/saml.js';
import { validateConfig } from '../../src/config/validate.js';
import { makeSigningPair, startLabIdp } from '../../src/labidp/idp.js';
import { labIdpMetadataXml } from '../../src/labidp/metadata.js';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { labLogin } from '../helpers/saml.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-idpimport-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const oldKey = makeSigningPair('Okta rollover: old');
const newKey = makeSigningPair('Okta rollover: new');
const body = (pem: string) => /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)![1]!.replace(/\s+/g, '');
const OKTA_ENTITY = 'http://www.okta.com/exk1rollover';
const OKTA_SSO = 'https://example.okta.test/app/example_tollgate/exk1rollover/sso/saml';

/** oktaShaped is metadata as Okta publishes it, with the parts that vary given. */
function oktaShaped(o: { keys?: string; sso?: string; root?: 'IDPSSODescriptor' | 'SPSSODescriptor' } = {}): string {
  const keys = o.keys ?? fix([oldKey, newKey].map((k) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n${body(k.certPem)}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join(''));
  const sso = o.sso ?? `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${OKTA_SSO}"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${OKTA_SSO}"/>`;
  const desc = o.root ?? 'IDPSSODescriptor';
  return `<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${OKTA_ENTITY}"><md:${desc} WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keys}<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>${sso}</md:${desc}></md:EntityDescriptor>`;
}

t.test("the lab IdP's own metadata", async (t) => {
  const pair = makeSigningPair('Lab');
  const m = readIdpMetadata(labIdpMetadataXml({ entityId: 'http://127.0.0.1:9402/metadata', ssoUrl: 'http://127.0.0.1:9402/sso', certPem: pair.certPem }));
  t.equal(m.entityId, 'http://127.0.0.1:9402/metadata');
  t.equal(m.ssoUrl, 'http://127.0.0.1:9402/sso');
  t.equal(m.certificates.length, 1);
  t.equal(body(m.certificates[0]!.pem), body(pair.certPem), 'the certificate itself');
  t.same(m.nameIdFormats, ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress']);
});

t.test('Okta-shaped metadata with two signing certificates (a rollover) keeps both', async (t) => {
  const m = readIdpMetadata(oktaShaped());
  t.equal(m.entityId, OKTA_ENTITY);
  t.equal(m.ssoUrl, OKTA_SSO, 'the HTTP-Redirect location, not the POST one');
  t.same(m.certificates.map((c) => c.subject), ['CN=Okta rollover: old', 'CN=Okta rollover: new']);
  t.equal(m.nameIdFormats.length, 2);
  // An encryption key is not a signing key; a KeyDescriptor without `use` is both (Metadata §2.4.1.1).
  const enc = `<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${body(makeSigningPair('enc').certPem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
  const both = `<md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${body(oldKey.certPem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
  t.same(readIdpMetadata(oktaShaped({ keys: fix(enc + both) })).certificates.map((c) => c.subject), ['CN=Okta rollover: old']);
  t.same(idpEntry(m, { id: 'okta', domains: ['example.test'] }, 'certs/okta.pem'), { id: 'okta', name: 'okta', ssoUrl: OKTA_SSO, certificate: 'certs/okta.pem', entityId: OKTA_ENTITY, domains: ['example.test'] });
  t.match(idpEntry(m, { id: 'okta', domains: [] }, 'x.pem'), { default: true }, 'no domains: the default IdP');
});

/** fix gives the ds prefix a declaration where a test fragment lacks one. */
function fix(keys: string): string {
  return keys.replace(/<md:KeyDescriptor([^>]*)><ds:KeyInfo>/g, '<md:KeyDescriptor$1><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">');
}

t.test('unusable metadata is refused with a code that says why', async (t) => {
  const expired = makeSigningPair('Expired', new Date(Date.now() - 86_400_000));
  const cases: [string, string, MetadataCode][] = [
    ['not XML', 'this is not xml', 'METADATA_NOT_XML'],
    ['a DTD', `<!DOCTYPE x [<!ENTITY e "e">]>${oktaShaped()}`, 'METADATA_NOT_XML'],
    ['SP metadata', oktaShaped({ root: 'SPSSODescriptor' }), 'METADATA_NO_IDP'],
    ['another XML document', '<feed xmlns="http://www.w3.org/2005/Atom"/>', 'METADATA_NO_IDP'],
    ['no signing key', oktaShaped({ keys: fix(`<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(oldKey.certPem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`) }), 'METADATA_NO_SIGNING_KEY'],
    ['only the POST binding', oktaShaped({ sso: `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${OKTA_SSO}"/>` }), 'METADATA_NO_REDIRECT'],
    ['an expired certificate', oktaShaped({ keys: fix(`<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(expired.certPem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`) }), 'METADATA_CERT_EXPIRED'],
    ['a certificate that is not one', oktaShaped({ keys: fix('<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>') }), 'METADATA_CERT_UNREADABLE'],
  ];
  for (const [name, xml, code] of cases) {
    t.throws(() => readIdpMetadata(xml), new MetadataError(code, ''), name);
    try {
      readIdpMetadata(xml);
    } catch (err) {
      t.equal((err as MetadataError).code, code, `${name}: ${(err as Error).message}`);
    }
  }
});

t.test('the imported IdP accepts a response signed by either rolled key, and no other', async (t) => {
  const cloud = 'tollgate.test';
  const file = writeCertificates(join(dir, 'certs'), 'okta', readIdpMetadata(oktaShaped()));
  t.equal((readFileSync(file, 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'both certificates in the file');
  const store = new EmbeddedStore({ path: join(dir, 'store') });
  t.teardown(() => store.close());
  const users = [{ loginName: 'ann@example.test', password: 'pw', displayName: 'Ann', department: 'Ops', groups: [] }];
  const idpWith = async (key: { keyPem: string; certPem: string }) => {
    const idp = await startLabIdp({ host: '127.0.0.1', port: 0, users, spEntityId: spEntityId(cloud, '1', false), acsUrl: defaultAcsUrl(cloud), entityId: OKTA_ENTITY, ...key });
    t.teardown(() => idp.close());
    return idp;
  };
  const [signedOld, signedNew, stranger] = await Promise.all([idpWith(oldKey), idpWith(newKey), idpWith(makeSigningPair('Not Okta'))]);
  for (const [name, idp, ok] of [['the old key', signedOld, true], ['the new key', signedNew, true], ['a key the metadata does not name', stranger, false]] as const) {
    const config = validateConfig({ idps: [{ ...idpEntry(readIdpMetadata(oktaShaped()), { id: 'okta', domains: [] }, file), ssoUrl: idp.ssoUrl }] });
    const prepared = await prepareIdps(config, { baseDir: dir, store, source: 'test' });
    const sp = prepared.byId.get('okta')!.sp;
    t.equal(prepared.byId.get('okta')!.certificates.length, 2);
    const { url } = await sp.authorizeUrl('relay');
    const post = await labLogin(url, 'ann@example.test', 'pw');
    const r = await sp.validate(post.samlResponse, post.relayState).then(
      (id) => id.loginName,
      (err: { code?: string }) => err.code,
    );
    t.equal(r, ok ? 'ann@example.test' : 'SAML_SIGNATURE', name);
  }
});

t.test('tollgate idp import writes the certificates and prints the entry', async (t) => {
  const meta = join(dir, 'okta-metadata.xml');
  writeFileSync(meta, oktaShaped());
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../src/cli.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const certs = join(dir, 'cli-certs');
  const r = await run(['idp', 'import', '--metadata', meta, '--id', 'okta', '--domains', 'example.test,example.org', '--certs', certs]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^# signing certificate: CN=Okta rollover: old, expires /m);
  t.match(r.stdout, /^# signing certificate: CN=Okta rollover: new, expires /m);
  t.same(parse(r.stdout), { idps: [{ id: 'okta', name: 'okta', ssoUrl: OKTA_SSO, certificate: join(certs, 'okta.pem'), entityId: OKTA_ENTITY, domains: ['example.test', 'example.org'] }] });
  t.equal((readFileSync(join(certs, 'okta.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  writeFileSync(meta, oktaShaped({ root: 'SPSSODescriptor' }));
  const bad = await run(['idp', 'import', '--metadata', meta, '--id', 'okta', '--certs', certs]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^tollgate idp import: METADATA_NO_IDP: /);
  t.equal((await run(['idp', 'import', '--id', 'okta'])).code, 2, '--metadata is required');
});
