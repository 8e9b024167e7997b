/**
 * config: "Save and Activate" through the admin API.
 *
 *   GET    /api/config                  the active version: number, text, who activated it, when
 *   GET    /api/config/draft            the staged draft (404 when none)
 *   PUT    /api/config/draft            stage a whole document (YAML or JSON, as a file holds it)
 *   PUT    /api/config/draft/<section>  stage one top-level section (`locations`, `idps`, ...) as JSON or YAML
 *   DELETE /api/config/draft            discard the draft
 *   GET    /api/config/diff             unified diff, active -> draft
 *   POST   /api/activate                activate the draft: every error with its path, or the new version
 *   GET    /api/config/history?limit=N  the last N activated versions, newest first, with who activated each
 *   POST   /api/config/rollback         {"version": n}: activate version n's text again, as a new version
 *   POST   /api/idps/import             {"id", "metadata", "domains"?, "name"?}: an IdP from its metadata, staged
 *   GET    /api/nodes                   every node's heartbeat: versions, start time, counts, a config it could not build
 *
 * Staging changes nothing that runs. A draft is parsed when saved (a syntax error is refused) and
 * validated (the answer lists what activation would refuse), but only activation reads IdP files
 * and builds a runtime.
 */
import type { IncomingMessage } from 'node:http';
import { ConfigError } from '../config/load.js';
import { CONFIG_SECTIONS } from '../config/shape.js';
import { HttpError } from '../http/errors.js';
import { readBody } from '../scim/body.js';
import { ScimError } from '../scim/errors.js';
import { readJson } from './api.js';
import { checkImportOptions, idpEntry, MetadataError, readIdpMetadata, writeCertificates, type IdpMetadata } from './idpimport.js';
import { type AdminDeps, type AdminRoutes, queryParams, sendJson } from './routes.js';

/** MAX_CONFIG_BODY bounds a staged document. */
const MAX_CONFIG_BODY = 1024 * 1024;

/** readText reads a request body as text, bounded. */
async function readText(req: IncomingMessage): Promise<string> {
  try {
    return (await readBody(req, MAX_CONFIG_BODY, 10_000)).toString('utf8');
  } catch (err) {
    if (err instanceof ScimError) throw new HttpError(err.status, err.status === 413 ? 'body_too_large' : 'bad_request', err.message);
    throw err;
  }
}

/**
 * parseOrRefuse checks a document's syntax: a draft that cannot even be parsed is not saved. The
 * YAML library loads when the config API is first used, not with the proxy.
 */
async function parseOrRefuse(text: string, what: string): Promise<unknown> {
  const { parseConfigData } = await import('../config/parse.js');
  try {
    return parseConfigData(text, what);
  } catch (err) {
    if (err instanceof ConfigError) throw new HttpError(400, 'config_syntax', `${what}: ${err.errors.join('; ')}`);
    throw err;
  }
}

/** withSection replaces one top-level section of a document, keeping the rest (and its comments). */
export async function withSection(text: string, section: string, value: unknown): Promise<string> {
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text);
  if (value === null) doc.delete(section);
  else doc.set(section, doc.createNode(value));
  return doc.toString();
}

/** unifiedDiff is the change from one text to another, as `diff -u` prints it (the library loads when first asked). */
export async function unifiedDiff(from: string, to: string, fromName: string, toName: string): Promise<string> {
  const { createTwoFilesPatch } = await import('diff');
  return createTwoFilesPatch(fromName, toName, from, to, undefined, undefined, { context: 3 });
}

/** configRoutes adds Save and Activate to the admin routes. */
export function configRoutes(routes: AdminRoutes, deps: AdminDeps): AdminRoutes {
  const versions = deps.activator.versions;
  const activeText = async (): Promise<{ version: number; text: string }> => {
    const a = await versions.active();
    if (a === null) throw new HttpError(409, 'no_active_version', 'No config version has been recorded yet.');
    return { version: a.version, text: a.text };
  };
  /** problems validates a draft as activation would, without reading IdP files: the errors, or none. */
  const problems = async (text: string): Promise<readonly string[]> => {
    try {
      await deps.activator.configOf(text, 'draft');
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.errors;
      throw err;
    }
  };
  const stage = async (text: string, who: string) => {
    const draft = await versions.saveDraft(text, who);
    return { draft: { base: draft.base, updatedBy: draft.updatedBy, updatedAt: draft.updatedAt }, errors: await problems(text) };
  };

  routes
    .read('GET', '/api/config', async (req, res, ctx) => {
      const a = await versions.active();
      if (a === null) throw new HttpError(409, 'no_active_version', 'No config version has been recorded yet.');
      sendJson(req, res, 200, { ...a, running: ctx.rt.version });
    })
    .read('GET', '/api/config/draft', async (req, res) => {
      const d = await versions.draft();
      if (d === null) throw new HttpError(404, 'no_draft', 'Nothing is staged.');
      sendJson(req, res, 200, { ...d, stale: d.base !== (await versions.activeVersion()), errors: await problems(d.text) });
    })
    .change('PUT', '/api/config/draft', 'config.stage', async (req, res, _ctx, who) => {
      const text = await readText(req);
      await parseOrRefuse(text, 'draft');
      const r = await stage(text, who);
      sendJson(req, res, 200, r);
      return { target: { section: '*' }, detail: { errors: r.errors.length } };
    })
    .change('DELETE', '/api/config/draft', 'config.discard', async (req, res) => {
      req.resume();
      const existed = await versions.discardDraft();
      sendJson(req, res, 200, { discarded: existed });
      return { detail: { discarded: existed } };
    })
    .read('GET', '/api/config/diff', async (req, res) => {
      const d = await versions.draft();
      if (d === null) throw new HttpError(404, 'no_draft', 'Nothing is staged.');
      const a = await activeText();
      sendJson(req, res, 200, { active: a.version, base: d.base, diff: await unifiedDiff(a.text, d.text, `active v${a.version}`, 'draft'), same: a.text === d.text });
    })
    .change('POST', '/api/activate', 'config.activate', async (req, res, _ctx, who) => {
      req.resume();
      const d = await versions.draft();
      if (d === null) throw new HttpError(409, 'no_draft', 'Nothing is staged: PUT /api/config/draft first.');
      const r = await deps.activate({ text: d.text, who, source: 'draft' });
      // The draft goes once it is live, unless someone staged another text meanwhile.
      if (r.ok && (await versions.draft())?.text === d.text) await versions.discardDraft();
      sendJson(req, res, r.ok ? 200 : 422, r);
      return r.ok ? { detail: { version: r.version, ...(r.nodes ? { nodes: r.nodes.map((n) => `${n.node}:${n.ok ? 'ok' : 'failed'}`) } : {}) } } : { outcome: 'failed', status: 422, detail: { errors: r.errors.length } };
    })
    .read('GET', '/api/config/history', async (req, res) => {
      const limit = Math.max(1, Math.min(Number(queryParams(req).get('limit') ?? 10) || 10, 100));
      const h = await versions.history(limit);
      sendJson(req, res, 200, { versions: h.map(({ text: _text, ...meta }) => meta) });
    })
    .change('POST', '/api/config/rollback', 'config.rollback', async (req, res, _ctx, who) => {
      const body = await readJson(req, 4096);
      const v = body.version;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new HttpError(400, 'bad_request', 'Give {"version": N}.');
      const rec = await versions.get(v);
      if (rec === null) throw new HttpError(404, 'unknown_version', `Version ${v} is not in the history (the last versions are kept).`);
      const r = await deps.activate({ text: rec.text, who, source: 'rollback', rolledBackFrom: v });
      sendJson(req, res, r.ok ? 200 : 422, r);
      return r.ok ? { target: { version: v }, detail: { version: r.version } } : { target: { version: v }, outcome: 'failed', status: 422, detail: { errors: r.errors.length } };
    })
    .change('POST', '/api/idps/import', 'idp.import', async (req, res, _ctx, who) => {
      const body = await readJson(req, 1024 * 1024);
      const opts = checkImportOptions(body.id, body.domains, body.name);
      if (typeof body.metadata !== 'string') throw new HttpError(400, 'bad_request', 'metadata must be the IdP metadata XML, as a string.');
      let meta: IdpMetadata;
      try {
        meta = readIdpMetadata(body.metadata);
      } catch (err) {
        if (err instanceof MetadataError) throw new HttpError(400, err.code, err.message);
        throw err;
      }
      writeCertificates(deps.certsDir, opts.id, meta);
      const entry = idpEntry(meta, opts, `certs/${opts.id}.pem`);
      const base = (await versions.draft())?.text ?? (await activeText()).text;
      const current = ((await parseOrRefuse(base, 'draft')) as { idps?: { id?: unknown }[] } | null)?.idps ?? [];
      const idps = [...current.filter((p) => p.id !== opts.id), entry];
      const r = await stage(await withSection(base, 'idps', idps), who);
      sendJson(req, res, 200, { entry, nameIdFormats: meta.nameIdFormats, certificates: meta.certificates.map((c) => ({ subject: c.subject, notAfter: c.notAfter.toISOString(), fingerprintSha256: c.fingerprintSha256 })), ...r });
      return { target: { idp: opts.id }, detail: { certificates: meta.certificates.length, errors: r.errors.length } };
    })
    .read('GET', '/api/nodes', async (req, res) => {
      sendJson(req, res, 200, { nodes: await deps.activator.nodes() });
    });

  // One route per top-level section, each stageable on its own, registered once (the router matches exact paths).
  for (const section of CONFIG_SECTIONS) {
    routes.change('PUT', `/api/config/draft/${section}`, 'config.stage', async (req, res, _ctx, who) => {
      const value = await parseOrRefuse(await readText(req), section);
      const base = (await versions.draft())?.text ?? (await activeText()).text;
      const r = await stage(await withSection(base, section, value), who);
      sendJson(req, res, 200, r);
      return { target: { section }, detail: { errors: r.errors.length } };
    });
  }
  return routes;
}
