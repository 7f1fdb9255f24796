import { execFileSync } from 'node:child_process';

/**
 * Vitest global setup: compiles the source into dist/ before any test runs, so that the processes
 * and threads the tests start run today's code compiled (PROTOFED_COMPILED_CHILDREN=1, set in
 * vitest.config.ts) rather than through the tsx loader.
 */
export default function buildDist(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
