import { existsSync } from 'node:fs';
import { join, relative as relativePath } from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { packageRoot } from './datasets/data-home.js';

/** A file protofed starts in another process or thread, and the node flags it needs. */
export interface EntryPoint {
  file: string;
  /** `--import tsx` when the file is TypeScript. */
  execArgv: string[];
}

/**
 * With this set to 1, code run from source starts the compiled copies in dist/ of the files it
 * starts: the tsx loader costs each start about 3 CPU-seconds here, and the test suite starts
 * hundreds of processes and threads (it builds dist/ first, test/support/build-dist.ts).
 */
export const COMPILED_CHILDREN_ENV = 'PROTOFED_COMPILED_CHILDREN';

/**
 * The entry file `relative` (without extension) next to the module at `from` (its
 * `import.meta.url`). Built (dist/), it is plain JavaScript; run from source (tsx, the tests), it
 * is TypeScript and needs the tsx loader, unless PROTOFED_COMPILED_CHILDREN=1 asks for its
 * compiled copy in dist/.
 *
 * @example
 * const worker = entryPoint(import.meta.url, './embedding-worker');
 */
export function entryPoint(from: string, relative: string): EntryPoint {
  const fromSource = from.endsWith('.ts');
  const file = fileURLToPath(new URL(`${relative}.${fromSource ? 'ts' : 'js'}`, from));
  if (!fromSource) return { file, execArgv: [] };
  if (process.env[COMPILED_CHILDREN_ENV] === '1') {
    const root = packageRoot() ?? '.';
    const compiled = join(root, 'dist', relativePath(root, file)).replace(/\.ts$/, '.js');
    if (!existsSync(compiled)) throw new Error(`${COMPILED_CHILDREN_ENV}=1 asks for ${compiled}, which is missing: run npm run build`);
    return { file: compiled, execArgv: [] };
  }
  return { file, execArgv: ['--import', 'tsx'] };
}

/** Starts a worker thread on `entry`; workers do not inherit the tsx loader, so a TypeScript entry registers it first. */
export function startWorker(entry: EntryPoint, workerData: unknown): Worker {
  return entry.execArgv.length > 0
    ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(entry.file).href)}); })`, { eval: true, workerData })
    : new Worker(entry.file, { workerData });
}
