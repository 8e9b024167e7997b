/**
 * names: which request paths are PAC downloads. Kept apart from the PAC machinery so the data plane
 * can ask without loading it.
 */

/** isPacPath tells whether a path names a PAC file (`/wpad.dat` or `/<name>.pac`). */
export function isPacPath(path: string): boolean {
  return path === '/wpad.dat' || (path.length > 5 && path.endsWith('.pac') && path.indexOf('/', 1) < 0);
}

/** pacName is the lower-case file name without `.pac` (`wpad` for /wpad.dat), or null for none. */
export function pacName(path: string): string | null {
  if (path === '/wpad.dat') return 'wpad';
  if (!isPacPath(path)) return null;
  try {
    return decodeURIComponent(path.slice(1, -4)).toLowerCase();
  } catch {
    return null; // a malformed escape names no location
  }
}
