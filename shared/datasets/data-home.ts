import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where `protofed data fetch` puts a dataset and where loaders look for it:
 * `$PROTOFED_DATA/<name>`, or `~/.cache/protofed/data/<name>`.
 *
 * @example
 * protofedDataDir('omniglot'); // '<home>/.cache/protofed/data/omniglot'
 */
export function protofedDataDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.PROTOFED_DATA && env.PROTOFED_DATA !== '' ? resolve(env.PROTOFED_DATA) : join(homedir(), '.cache', 'protofed', 'data');
  return join(base, name);
}

/** Repo root = nearest ancestor of this module holding package.json (works from source and from dist/). */
export function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * `text` with this package's folder taken out of every path in it (paths inside the package
 * become relative to it), for what gets committed: results and model records carry no path of
 * the machine that made them.
 *
 * @example
 * withinPackage(`${packageRoot()}/data/glyphs-28`); // 'data/glyphs-28'
 */
export function withinPackage(text: string): string {
  const root = packageRoot();
  return root ? text.split(`${root}/`).join('') : text;
}
