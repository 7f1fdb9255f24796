import { entryPoint } from '../../shared/entry-points.js';

/** The node arguments that run protofed's CLI with `args`: compiled, as the suite runs children (see build-dist.ts), or through tsx. */
export function cliArgs(...args: string[]): string[] {
  const cli = entryPoint(import.meta.url, '../../cli/main');
  return [...cli.execArgv, cli.file, ...args];
}
