import { readdirSync, statSync } from 'node:fs';
import { DataFileError } from './labelled-dataset.js';

/** True for an existing regular file (false for anything unreadable). */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** True for an existing folder (false for anything unreadable). */
export function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The entries of a folder, hidden ones left out; an unreadable folder is a DataFileError naming it. */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => !name.startsWith('.'));
  } catch (err) {
    throw new DataFileError(dir, `cannot list folder (${(err as Error).message})`);
  }
}
