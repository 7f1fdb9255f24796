/**
 * Embedding throughput of conv4 on every tensor backend that loads here, at 28×28×1 and
 * 84×84×3, batch 256: the tf.layers model (`model.predict`) and the BatchNorm-folded path that
 * protofed uses. The cpu backend, measured in the same run, is the baseline of the ratios.
 * Writes bench/results/embed.json.
 *
 *   npm run bench:embed
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { FoldedConvNet } from '../shared/embedding/folded-inference.js';
import { backendFailures, selectBackend, type BackendName } from '../shared/tensor/tensor-backend.js';

const BATCH = 256;
const INPUTS = [{ rows: 28, cols: 28, channels: 1 }, { rows: 84, cols: 84, channels: 3 }];
/** Seconds to keep measuring one configuration (at least one timed batch). */
const BUDGET_S = Number(process.env.BENCH_SECONDS ?? 6);

interface Result {
  backend: BackendName;
  input: string;
  batch: number;
  path: 'folded' | 'layers';
  imagesPerSecond: number;
  batchesTimed: number;
}

async function timeIt(run: () => tf.Tensor): Promise<{ perSecond: number; batches: number }> {
  const warm = run();
  await warm.data();
  warm.dispose();
  let batches = 0;
  const started = performance.now();
  while (batches === 0 || (performance.now() - started) / 1000 < BUDGET_S) {
    const y = run();
    await y.data();
    y.dispose();
    batches++;
  }
  return { perSecond: (batches * BATCH) / ((performance.now() - started) / 1000), batches };
}

const results: Result[] = [];
const available: BackendName[] = [];
for (const backend of ['tensorflow', 'wasm', 'cpu'] as const) {
  try {
    await selectBackend(backend);
  } catch {
    continue;
  }
  await tf.setBackend(backend);
  available.push(backend);
  for (const input of INPUTS) {
    const model = buildConv4(input, 1);
    const folded = FoldedConvNet.tryFrom(model)!;
    const x = tf.randomUniform([BATCH, input.rows, input.cols, input.channels]) as tf.Tensor4D;
    const label = `${input.rows}x${input.cols}x${input.channels}`;
    for (const path of ['folded', 'layers'] as const) {
      const { perSecond, batches } = await timeIt(() => (path === 'folded' ? folded.apply(x) : (model.predict(x) as tf.Tensor)));
      results.push({ backend, input: label, batch: BATCH, path, imagesPerSecond: Math.round(perSecond), batchesTimed: batches });
      process.stdout.write(`${backend.padEnd(10)} ${label.padEnd(9)} ${path.padEnd(6)} ${perSecond.toFixed(0).padStart(7)} images/s (${batches} batches)\n`);
    }
    x.dispose();
    folded.dispose();
    model.dispose();
  }
}

const ratio = (backend: BackendName, input: string, path: Result['path'], base: { backend: BackendName; path: Result['path'] }): number | null => {
  const a = results.find((r) => r.backend === backend && r.input === input && r.path === path);
  const b = results.find((r) => r.backend === base.backend && r.input === input && r.path === base.path);
  return a && b ? Number((a.imagesPerSecond / b.imagesPerSecond).toFixed(2)) : null;
};
const ratios = INPUTS.flatMap((i) => {
  const input = `${i.rows}x${i.cols}x${i.channels}`;
  return available.flatMap((backend) => [
    { input, backend, vsCpuLayers: ratio(backend, input, 'folded', { backend: 'cpu', path: 'layers' }), foldedVsLayersSameBackend: ratio(backend, input, 'folded', { backend, path: 'layers' }) },
  ]);
});
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/embed.json', `${JSON.stringify({
  benchmark: 'conv4 embedding throughput',
  date: new Date().toISOString(),
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
  unavailableBackends: backendFailures(),
  results,
  ratios,
  note: 'imagesPerSecond on one process; ratios are measured in the same run (baseline: cpu backend, tf.layers predict).',
}, null, 2)}\n`);
process.stdout.write('wrote bench/results/embed.json\n');
