import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { COMPILED_CHILDREN_ENV, entryPoint } from '../shared/entry-points.js';

const asSet = process.env[COMPILED_CHILDREN_ENV];
afterEach(() => {
  if (asSet === undefined) delete process.env[COMPILED_CHILDREN_ENV];
  else process.env[COMPILED_CHILDREN_ENV] = asSet;
});

describe('entry points of child processes and worker threads', () => {
  const fromSource = pathToFileURL(resolve('coordinator/process-spawner.ts')).href;

  it('built code starts built files; source starts TypeScript through tsx, or dist/ when asked', () => {
    expect(entryPoint(pathToFileURL(resolve('dist/coordinator/process-spawner.js')).href, '../client/process-entry'))
      .toEqual({ file: resolve('dist/client/process-entry.js'), execArgv: [] });
    delete process.env[COMPILED_CHILDREN_ENV];
    expect(entryPoint(fromSource, '../client/process-entry')).toEqual({ file: resolve('client/process-entry.ts'), execArgv: ['--import', 'tsx'] });
    process.env[COMPILED_CHILDREN_ENV] = '1';
    // The suite's global setup built dist/ (test/support/build-dist.ts).
    expect(existsSync('dist/client/process-entry.js')).toBe(true);
    expect(entryPoint(fromSource, '../client/process-entry')).toEqual({ file: resolve('dist/client/process-entry.js'), execArgv: [] });
  });

  it('asked for a compiled file that is not there, it says which and how to build it', () => {
    process.env[COMPILED_CHILDREN_ENV] = '1';
    expect(() => entryPoint(fromSource, '../client/no-such-entry')).toThrow(`asks for ${join(resolve('dist/client'), 'no-such-entry.js')}, which is missing: run npm run build`);
  });
});
