import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A file protofed starts in another process or thread, and the node flags it needs. */
export interface EntryPoint {
  file: string;
  /** `--import tsx` when the file is TypeScript. */
  execArgv: string[];
}

/**
 * The entry file `relative` (without extension) next to the module at `from` (its
 * `import.meta.url`). Built (dist/), it is plain JavaScript; run from source (tsx, the tests), it
 * is TypeScript and needs the tsx loader.
 *
 * @example
 * const worker = entryPoint(import.meta.url, './embedding-worker');
 */
export function entryPoint(from: string, relative: string): EntryPoint {
  const fromSource = from.endsWith('.ts');
  const file = fileURLToPath(new URL(`${relative}.${fromSource ? 'ts' : 'js'}`, from));
  return { file, execArgv: fromSource ? ['--import', 'tsx'] : [] };
}

/** Starts a worker thread on `entry`; workers do not inherit the tsx loader, so a TypeScript entry registers it first. */
export function startWorker(entry: EntryPoint, workerData: unknown): Worker {
  return entry.execArgv.length > 0
    ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(entry.file).href)}); })`, { eval: true, workerData })
    : new Worker(entry.file, { workerData });
}
