import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Most integration tests wait on child processes and sockets: two files at a time on two cores
    // take about 250 s instead of 330 s.
    maxWorkers: 2,
    // Client processes, CLI runs and worker threads start compiled from dist/, built once here:
    // through the tsx loader each start cost about 3 CPU-seconds more.
    globalSetup: ['test/support/build-dist.ts'],
    env: { PROTOFED_COMPILED_CHILDREN: '1' },
  },
});
