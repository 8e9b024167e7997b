/**
 * files: reading a file that may not be there, and replacing one atomically with a given mode, for
 * keys and certificates kept on disk (the lab IdP's signing pair, the inspection CA).
 */
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';

/** readIfThere returns a file's text, or null when it does not exist; other errors are thrown. */
export async function readIfThere(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** writeAtomically writes a temporary file with `mode` and renames it over `path`, so readers never see half a file. */
export async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  // writeFile's mode applies only to a new file; a leftover temp file keeps its own.
  await chmod(tmp, mode);
  await rename(tmp, path);
}
