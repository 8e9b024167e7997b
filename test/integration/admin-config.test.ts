/**
 * Save and Activate through the admin API on a file-based node: stage (whole or per section), diff,
 * activate, a refused activation with every error, history and rollback, and the file kept in step.
 *
 *   PUT /api/config/draft/locations -> GET /api/config/diff -> POST /api/activate -> runtime v2, file rewritten
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { AdminTokens } from '../../src/admin/tokens.js';
import { withSection } from '../../src/admin/config.js';
import { startTollgate } from '../../src/main.js';
import { makeSigningPair } from '../../src/labidp/idp.js';
import { labIdpMetadataXml } from '../../src/labidp/metadata.js';
import { startOrigin } from '../helpers/origin.js';
import { LogSink, viaProxy } from '../helpers/tollgate.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-admin-config-'));
const origin = await startOrigin();
const file = join(dir, 'tollgate.yaml');
const original = `# the lab's config
listeners: { proxy: 127.0.0.1:0, control: 127.0.0.1:0 }
store: { type: embedded, path: ${JSON.stringify(join(dir, 'data'))} }
nodeName: solo
locations:
  - name: lab   # loopback but for .2
    ips: [127.0.0.1/32]
`;
writeFileSync(file, original);
const app = new LogSink();
const tg = await startTollgate({ configPath: file, accessLog: new LogSink(), appLog: app });
t.teardown(async () => {
  await tg.shutdown();
  await origin.close();
  rmSync(dir, { recursive: true, force: true });
});
const admin = { authorization: `Bearer ${await new AdminTokens(tg.store).generate('ops')}` };

async function api(method: string, path: string, body?: string | object): Promise<{ status: number; body: Record<string, any> }> {
  const r = await fetch(`http://127.0.0.1:${tg.controlAddress.port}${path}`, {
    method,
    headers: { ...admin, accept: 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}
const from2 = async () => (await viaProxy(tg.proxyAddress.port, `${origin.url}/hello`, { localAddress: '127.0.0.2' })).status;

t.test('the active version is the file, recorded at start', async (t) => {
  const a = await api('GET', '/api/config');
  t.equal(a.status, 200);
  t.match(a.body, { version: 1, text: original, activatedBy: 'start', source: 'start', running: 1 });
  t.match(await api('GET', '/api/config/draft'), { status: 404, body: { error: { code: 'no_draft' } } });
  t.match(await api('POST', '/api/activate'), { status: 409, body: { error: { code: 'no_draft' } } });
});

t.test('a staged section changes nothing until activated; the diff shows it; activation applies it and writes the file', async (t) => {
  const staged = await api('PUT', '/api/config/draft/locations', [{ name: 'lab', ips: ['127.0.0.1/32'] }, { name: 'second', ips: ['127.0.0.2/32'] }]);
  t.equal(staged.status, 200);
  t.same(staged.body.errors, [], 'the draft is valid');
  t.match(staged.body.draft, { base: 1, updatedBy: 'ops' });
  t.equal(await from2(), 403, 'staging changes nothing');
  t.equal(tg.runtime.current.version, 1);

  const diff = await api('GET', '/api/config/diff');
  t.equal(diff.status, 200);
  t.match(diff.body.diff, /^--- active v1\n\+\+\+ draft\n/m);
  t.match(diff.body.diff, /^\+ {2}- name: second$/m);
  t.match((await api('GET', '/api/config/draft')).body.text, /^# the lab's config$/m, 'comments outside the section are kept');

  const on = await api('POST', '/api/activate');
  t.equal(on.status, 200, JSON.stringify(on.body));
  t.same(on.body, { ok: true, version: 2, warnings: [] });
  t.equal(await from2(), 200, 'the new location routes');
  t.equal(tg.runtime.current.version, 2);
  t.same(parse(readFileSync(file, 'utf8')).locations[1], { name: 'second', ips: ['127.0.0.2/32'] }, 'the file holds the activated config');
  t.match(readFileSync(file, 'utf8'), "# the lab's config");
  t.match(await api('GET', '/api/config/draft'), { status: 404 }, 'the activated draft is gone');
});

t.test('a bad activation is refused with every error, and the old config stays live', async (t) => {
  const bad = `${readFileSync(file, 'utf8')}unknownSources: sometimes\nidps:\n  - { id: okta, name: Okta, ssoUrl: "https://o.test/sso", certificate: missing.pem, entityId: urn:o, default: true }\n`;
  const staged = await api('PUT', '/api/config/draft', bad);
  t.equal(staged.status, 200, 'a draft with errors is still saved');
  t.match(staged.body.errors, [/^unknownSources: /], 'and the answer says what activation would refuse');
  const r = await api('POST', '/api/activate');
  t.equal(r.status, 422);
  t.equal(r.body.ok, false);
  t.match(r.body.errors, [/^unknownSources: /]);
  t.equal(tg.runtime.current.version, 2, 'still v2');
  t.equal(await from2(), 200, 'still routing by v2');

  // Validation passes, the IdP file does not: still every error at once.
  const cert = await api('PUT', '/api/config/draft/unknownSources', '"deny"');
  t.same(cert.body.errors, []);
  const r2 = await api('POST', '/api/activate');
  t.equal(r2.status, 422);
  t.match(r2.body.errors, [/^idps\[0\]\.certificate: cannot read missing\.pem: ENOENT/]);
  t.equal(tg.runtime.current.version, 2);
  t.equal((await api('GET', '/api/config')).body.version, 2, 'nothing was recorded');

  t.match(await api('PUT', '/api/config/draft', 'locations: [unclosed'), { status: 400, body: { error: { code: 'config_syntax' } } });
  t.match((await api('GET', '/api/config/draft')).body.text, 'missing.pem', 'a document that does not parse replaces nothing');
  t.match(await api('PUT', '/api/config/draft/nosuchsection', '1'), { status: 404 });
  t.same((await api('DELETE', '/api/config/draft')).body, { discarded: true });
});

t.test('history lists who activated what; rollback brings a version back as a new one', async (t) => {
  const h = await api('GET', '/api/config/history');
  t.match(h.body.versions, [
    { version: 2, activatedBy: 'ops', source: 'draft' },
    { version: 1, activatedBy: 'start', source: 'start' },
  ]);
  t.equal(h.body.versions[0].text, undefined, 'the list carries no texts');
  t.equal((await api('GET', '/api/config/history?limit=1')).body.versions.length, 1);

  const back = await api('POST', '/api/config/rollback', { version: 1 });
  t.equal(back.status, 200, JSON.stringify(back.body));
  t.match(back.body, { ok: true, version: 3 });
  t.equal(await from2(), 403, 'v1 routes again');
  t.equal(readFileSync(file, 'utf8'), original, 'the file is v1 again, comments and all');
  t.match((await api('GET', '/api/config/history')).body.versions[0], { version: 3, source: 'rollback', rolledBackFrom: 1, activatedBy: 'ops' });
  t.match(await api('POST', '/api/config/rollback', { version: 99 }), { status: 404, body: { error: { code: 'unknown_version' } } });
  t.match(await api('POST', '/api/config/rollback', { version: 'one' }), { status: 400 });

  // SIGHUP re-reads the file, which the rollback left as v1's text.
  t.match(await tg.activate(), { ok: true, version: 4 });
  t.equal(await from2(), 403);
});

t.test('the node list and the audit log', async (t) => {
  const n = await api('GET', '/api/nodes');
  t.match(n.body.nodes, [{ name: 'solo', configVersion: 4, configFailed: null }]);
  t.ok(typeof n.body.nodes[0].requests === 'number' && n.body.nodes[0].requests >= 1, 'its request count, from the /metrics counters');
  const audit = app.lines.filter((l) => l.msg === 'admin audit').map((l) => `${l.who} ${l.action} ${l.outcome}`);
  t.same(audit, [
    'ops config.activate refused',
    'ops config.stage ok',
    'ops config.activate ok',
    'ops config.stage ok',
    'ops config.activate failed',
    'ops config.stage ok',
    'ops config.activate failed',
    'ops config.stage refused',
    'ops config.discard ok',
    'ops config.rollback ok',
    'ops config.rollback refused',
    'ops config.rollback refused',
  ]);
});

t.test('withSection replaces one section and keeps the rest', async (t) => {
  const text = '# top\ncloud: a.test # the cloud\nlocations: []\n';
  t.equal(await withSection(text, 'locations', [{ name: 'x', ips: ['10.0.0.0/8'] }]), '# top\ncloud: a.test # the cloud\nlocations:\n  - name: x\n    ips:\n      - 10.0.0.0/8\n');
  t.same(parse(await withSection(text, 'cloud', null)), { locations: [] }, 'null removes a section (back to its default)');
  t.match(parse(await withSection('{"cloud": "a.test"}', 'orgId', 'acme')), { cloud: 'a.test', orgId: 'acme' }, 'a JSON document too');
});

t.test('an IdP imported from its metadata through the API is staged, then activated with its certificates', async (t) => {
  const one = makeSigningPair('Imported one');
  const two = makeSigningPair('Imported two');
  const xml = labIdpMetadataXml({ entityId: 'urn:imported', ssoUrl: 'https://imported.test/sso', certPem: one.certPem }).replace(
    '<md:NameIDFormat>',
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${two.certPem.replace(/-----[A-Z ]+-----|\s+/g, '')}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:NameIDFormat>`,
  );
  const r = await api('POST', '/api/idps/import', { id: 'imported', name: 'Imported IdP', metadata: xml });
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.same(r.body.entry, { id: 'imported', name: 'Imported IdP', ssoUrl: 'https://imported.test/sso', certificate: 'certs/imported.pem', entityId: 'urn:imported', default: true });
  t.same(r.body.errors, []);
  t.equal(r.body.certificates.length, 2);
  t.equal((readFileSync(join(dir, 'certs', 'imported.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'written under certs/ beside the config file');
  t.equal(tg.runtime.current.idps.size, 0, 'staged, not live');
  t.match((await api('GET', '/api/config/diff')).body.diff, /^\+ {4}entityId: urn:imported$/m);
  const on = await api('POST', '/api/activate');
  t.equal(on.status, 200, JSON.stringify(on.body));
  t.equal(tg.runtime.current.idps.get('imported')?.certificates.length, 2, 'live with both certificates');
  const view = ((await api('GET', '/api/idps')).body.idps as { id: string; certificates: { subject: string }[] }[]).find((i) => i.id === 'imported');
  t.same(view?.certificates.map((c) => c.subject), ['CN=Imported one', 'CN=Imported two'], 'the IdP page lists both, with their expiry');
  t.match(await api('POST', '/api/idps/import', { id: 'x', metadata: '<nope' }), { status: 400, body: { error: { code: 'METADATA_NOT_XML' } } });
  t.match(await api('POST', '/api/idps/import', { id: 'bad id!', metadata: xml }), { status: 400, body: { error: { code: 'bad_request' } } });
});
