/**
 * idps: turns the config's `idps` section into ready service providers at activation.
 *
 * Certificate and key files are read and checked here, off the request path: a file that is not a
 * PEM certificate or an expired certificate fails the activation (every such error at once), and a
 * certificate expiring within 30 days is a warning.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../config/load.js';
import type { Config, IdpConfig } from '../config/schema.js';
import type { Store } from '../sessions/store.js';
import { parseIdpCertificates, type IdpCertificate } from './certificate.js';
import { SamlSp, defaultAcsUrl, withIdpDefaults } from './saml.js';

/** IdpRuntime is one IdP as the runtime holds it. */
export interface IdpRuntime {
  readonly config: IdpConfig;
  /** certificate is the first signing certificate; certificates all of them (two during a rollover). */
  readonly certificate: IdpCertificate;
  readonly certificates: readonly IdpCertificate[];
  readonly sp: SamlSp;
}

/** PreparedIdps is the result of an activation's IdP step. */
export interface PreparedIdps {
  readonly byId: ReadonlyMap<string, IdpRuntime>;
  readonly warnings: readonly string[];
}

/** prepareIdps reads every IdP's files and builds its SP; throws ConfigError with every problem. */
export async function prepareIdps(config: Config, opts: { baseDir: string; store: Store; source: string; now?: Date }): Promise<PreparedIdps> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const byId = new Map<string, IdpRuntime>();
  const read = async (path: string, where: string): Promise<string | null> => {
    const full = isAbsolute(path) ? path : resolve(opts.baseDir, path);
    try {
      const buf = await readFile(full);
      if (buf.length > 256 * 1024) {
        errors.push(`${where}: ${path} is larger than 256 KiB`);
        return null;
      }
      return buf.toString('utf8');
    } catch (err) {
      errors.push(`${where}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return null;
    }
  };
  for (const [i, idp] of config.idps.entries()) {
    const where = `idps[${i}]`;
    const certPem = await read(idp.certificate, `${where}.certificate`);
    const spKeyPem = idp.spKey !== undefined ? await read(idp.spKey, `${where}.spKey`) : undefined;
    const spCertPem = idp.spCert !== undefined ? await read(idp.spCert, `${where}.spCert`) : undefined;
    if (certPem === null || spKeyPem === null || spCertPem === null) continue;
    let certificates: IdpCertificate[];
    try {
      certificates = parseIdpCertificates(certPem, opts.now, `IdP "${idp.id}" certificate`);
    } catch (err) {
      errors.push(`${where}.certificate: ${(err as Error).message}`);
      continue;
    }
    const certificate = certificates[0]!;
    for (const c of certificates) if (c.warning) warnings.push(`${where}.certificate: ${c.warning}`);
    const settings = withIdpDefaults({
      id: idp.id,
      name: idp.name,
      ssoUrl: idp.ssoUrl,
      idpCertPem: certificates.map((c) => c.pem).join(''),
      idpEntityId: idp.entityId,
      loginNameAttribute: idp.loginNameAttribute,
      displayNameAttribute: idp.attributes.displayName,
      groupsAttribute: idp.attributes.groups,
      departmentAttribute: idp.attributes.department,
      orgSpecificEntityId: idp.orgSpecificEntityId,
      signRequest: idp.signRequest,
      ...(spKeyPem !== undefined ? { spKeyPem } : {}),
      ...(spCertPem !== undefined ? { spCertPem } : {}),
      wantResponseSigned: idp.wantResponseSigned,
      wantAssertionsSigned: idp.wantAssertionsSigned,
      clockSkewMs: idp.clockSkewMs,
    });
    try {
      byId.set(idp.id, Object.freeze({ config: idp, certificate, certificates, sp: new SamlSp({ idp: settings, cloud: config.cloud.toLowerCase(), orgId: config.orgId, store: opts.store, requestTtlMs: config.authentication.loginTimeoutMs, acsUrl: defaultAcsUrl(config.cloud.toLowerCase(), config.authentication.gatewayScheme) }) }));
    } catch (err) {
      errors.push(`${where}: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) throw new ConfigError(opts.source, errors);
  return { byId, warnings };
}
