/**
 * openssl: running the openssl command on certificates in tests, so what Tollgate makes is checked
 * by a second, independent X.509 implementation.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** openssl runs `openssl ARGS` and returns its exit status and both outputs together. */
export function openssl(args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** x509Text is `openssl x509 -noout -text` of a PEM certificate. */
export function x509Text(dir: string, pem: string): string {
  const f = join(dir, `text-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(f, pem);
  const r = openssl(['x509', '-in', f, '-noout', '-text']);
  if (r.status !== 0) throw new Error(r.out);
  return r.out;
}
