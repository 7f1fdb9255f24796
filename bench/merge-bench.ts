/**
 * Coordinator merge throughput (bench/merge-throughput.ts); writes bench/results/merge.json.
 *
 *   npx tsx bench/merge-bench.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { measureMergeThroughput } from './merge-throughput.js';

const m = measureMergeThroughput();
const result = {
  benchmark: 'coordinator merge throughput, one core',
  date: new Date().toISOString(),
  node: process.version,
  update: m.update,
  mergesPerSecond: m.mergesPerSecond,
  naiveBaselinePerSecond: m.naiveBaselinePerSecond,
  ratioToBaseline: m.ratioToBaseline,
  goal: 3_000_000,
  // The issue measured the naive loop at 2.2 million per second on this kind of machine; the goal
  // is 3 million, so 1.36 times the naive loop measured in the same run is the goal on a busy machine.
  goalRatioToBaseline: 1.36,
  note: 'best of 5 runs each, measured in the same process; class updates per second (msgpack decode, validation, codec decode, dedup, float64 merge)',
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/merge.json', `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
