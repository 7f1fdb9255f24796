/**
 * Embedding throughput of conv4 on every tensor backend that loads here, at 28×28×1 and
 * 84×84×3, batch 256: the tf.layers model (`model.predict`), the BatchNorm-folded net on tfjs's
 * convolutions ('folded'), and the folded net with blocks 2–4 in the Winograd wasm kernel
 * ('winograd', what protofed uses on wasm and cpu). The cpu backend, measured in the same run,
 * is the baseline of the ratios.
 * Bulk embedding (`Backbone.embed`) on one wasm thread and on the worker pool, at both inputs,
 * with the kernel and without it.
 * When PyTorch loads here (Debian: python3-torch), conv4 in PyTorch on as many threads as cores,
 * measured in the same run, is the reference of `vsPyTorch`. Writes bench/results/embed.json.
 *
 *   npm run bench:embed
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { withinPackage } from '../shared/datasets/data-home.js';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backbone } from '../shared/embedding/backbone.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { EmbeddingPool } from '../shared/embedding/embedding-pool.js';
import { registerFileModelIO } from '../shared/tensor/file-model-io.js';
import * as tf from '@tensorflow/tfjs';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { FoldedConvNet } from '../shared/embedding/folded-inference.js';
import { backendFailures, eachLoadableBackend, type BackendName } from '../shared/tensor/tensor-backend.js';

const BATCH = 256;
const INPUTS = [{ rows: 28, cols: 28, channels: 1 }, { rows: 84, cols: 84, channels: 3 }];
/** Seconds to keep measuring one configuration (at least one timed batch). */
const BUDGET_S = Number(process.env.BENCH_SECONDS ?? 6);

interface Result {
  backend: BackendName;
  input: string;
  batch: number;
  path: 'winograd' | 'folded' | 'layers';
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

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results: Result[] = [];
const available: BackendName[] = [];
for await (const backend of eachLoadableBackend()) {
  available.push(backend);
  for (const input of INPUTS) {
    const model = buildConv4(input, 1);
    const winograd = FoldedConvNet.tryFrom(model)!;
    const folded = FoldedConvNet.tryFrom(model, { kernel: 'off' })!;
    const x = tf.randomUniform([BATCH, input.rows, input.cols, input.channels]) as tf.Tensor4D;
    const label = `${input.rows}x${input.cols}x${input.channels}`;
    for (const path of ['winograd', 'folded', 'layers'] as const) {
      const run = { winograd: () => winograd.apply(x), folded: () => folded.apply(x), layers: () => model.predict(x) as tf.Tensor }[path];
      const { perSecond, batches } = await timeIt(run);
      results.push({ backend, input: label, batch: BATCH, path, imagesPerSecond: Math.round(perSecond), batchesTimed: batches });
      process.stdout.write(`${backend.padEnd(10)} ${label.padEnd(9)} ${path.padEnd(8)} ${perSecond.toFixed(0).padStart(7)} images/s (${batches} batches)\n`);
    }
    x.dispose();
    winograd.dispose();
    folded.dispose();
    model.dispose();
  }
}

// PyTorch's conv4, the reference, in the same window (skipped when torch does not load). It runs
// before and after protofed's bulk embedding; the faster of the two is the reference.
type PyTorchRun = { torch: string; threads: number; results: { input: string; imagesPerSecond: number }[] };
// The first Python that imports torch: $PYTHON, Debian's, or the one on PATH.
const python = [process.env.PYTHON, '/usr/bin/python3', 'python3'].find((p) => {
  try {
    return p !== undefined && execFileSync(p, ['-c', 'import torch'], { stdio: 'ignore' }) !== undefined;
  } catch {
    return false;
  }
}) ?? 'python3';
function runPyTorch(): PyTorchRun | { unavailable: string } {
  try {
    const out = execFileSync(python, ['bench/pytorch/conv4_inference.py', '--threads', String(cpus().length), '--seconds', String(BUDGET_S)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const run = JSON.parse(out.trim().split('\n').at(-1)!) as PyTorchRun;
    for (const r of run.results) process.stdout.write(`pytorch    ${r.input.padEnd(9)} ${cpus().length} threads   ${String(r.imagesPerSecond).padStart(7)} images/s\n`);
    return run;
  } catch (err) {
    return { unavailable: String((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n').at(-1)! };
  }
}
const pytorchRuns = [runPyTorch()];

// Bulk embedding on one thread against one worker thread per core (what the coordinator does),
// with the Winograd kernel and without, in interleaved rounds: each figure is the median of its rounds.
const ROUNDS = 3;
const threadResults: { backend: BackendName; input: string; kernel: 'auto' | 'off'; threads: number; imagesPerSecond: number; rounds: number[] }[] = [];
if (available.includes('wasm')) {
  await tf.setBackend('wasm');
  registerFileModelIO();
  for (const input of INPUTS) {
    const label = `${input.rows}x${input.cols}x${input.channels}`;
    const dir = mkdtempSync(join(tmpdir(), 'protofed-bench-conv4-'));
    await buildConv4(input, 1).save(`file://${dir}`);
    const size = input.rows * input.cols * input.channels;
    // A few seconds of work on one thread at the speeds seen here.
    const n = BATCH * (input.rows > 28 ? 4 : 16);
    const images = new Uint8Array(n * size).map((_, i) => (i * 7919) % 256);
    const threads = cpus().length;
    const embedders: { kernel: 'auto' | 'off'; threads: number; b: Backbone; close: () => Promise<void> }[] = [];
    for (const kernel of ['auto', 'off'] as const) {
      const spec = { name: 'conv4' as const, weights: dir, batchSize: BATCH, kernel };
      const { backbone } = await createBackbone(spec, input, 'wasm');
      const pool = await EmbeddingPool.start(spec, input, 'wasm', threads, backbone);
      embedders.push({ kernel, threads: 1, b: backbone, close: async () => backbone.dispose() }, { kernel, threads, b: pool, close: () => pool.close() });
    }
    // Warm-up gives every thread a whole batch, so no thread grows its wasm memory while timed.
    for (const e of embedders) await e.b.embed(images.subarray(0, BATCH * e.threads * size), BATCH * e.threads);
    const rounds = embedders.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, e] of embedders.entries()) {
        const started = performance.now();
        await e.b.embed(images, n);
        rounds[i]!.push(Math.round(n / ((performance.now() - started) / 1000)));
      }
    }
    embedders.forEach((e, i) => threadResults.push({ backend: 'wasm', input: label, kernel: e.kernel, threads: e.threads, imagesPerSecond: median(rounds[i]!), rounds: rounds[i]! }));
    for (const e of embedders.reverse()) await e.close();
  }
  for (const r of threadResults) process.stdout.write(`wasm       ${r.input.padEnd(9)} kernel ${r.kernel.padEnd(4)} ${r.threads} thread(s) ${String(r.imagesPerSecond).padStart(7)} images/s (rounds ${r.rounds.join(', ')})\n`);
}
pytorchRuns.push(runPyTorch());
const completed = pytorchRuns.filter((r): r is PyTorchRun => 'results' in r);
const pytorch = completed.length > 0
  ? {
    torch: completed[0]!.torch, threads: completed[0]!.threads,
    // Per input, the faster run's entry.
    results: completed[0]!.results.map((r) => completed.map((c) => c.results.find((x) => x.input === r.input)!).reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a))),
    runs: completed.map((c) => c.results),
  }
  : pytorchRuns[0]!;
const vsPyTorch = 'results' in pytorch
  ? threadResults.map((r) => {
    const reference = pytorch.results.find((p) => p.input === r.input)!;
    return { input: r.input, kernel: r.kernel, wasmThreads: r.threads, ratio: Number((r.imagesPerSecond / reference.imagesPerSecond).toFixed(2)) };
  })
  : null;

const ratio = (backend: BackendName, input: string, path: Result['path'], base: { backend: BackendName; path: Result['path'] }): number | null => {
  const a = results.find((r) => r.backend === backend && r.input === input && r.path === path);
  const b = results.find((r) => r.backend === base.backend && r.input === input && r.path === base.path);
  return a && b ? Number((a.imagesPerSecond / b.imagesPerSecond).toFixed(2)) : null;
};
const ratios = INPUTS.flatMap((i) => {
  const input = `${i.rows}x${i.cols}x${i.channels}`;
  return available.flatMap((backend) => [
    {
      input, backend, vsCpuLayers: ratio(backend, input, 'winograd', { backend: 'cpu', path: 'layers' }),
      foldedVsLayersSameBackend: ratio(backend, input, 'folded', { backend, path: 'layers' }),
      winogradVsFoldedSameBackend: ratio(backend, input, 'winograd', { backend, path: 'folded' }),
    },
  ]);
});
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/embed.json', `${JSON.stringify({
  benchmark: 'conv4 embedding throughput',
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  unavailableBackends: Object.fromEntries(Object.entries(backendFailures()).map(([name, why]) => [name, withinPackage(why)])),
  results,
  ratios,
  threads: threadResults,
  poolVsOneThread: Object.fromEntries(INPUTS.map((i) => `${i.rows}x${i.cols}x${i.channels}`).map((input) => {
    const [one, pool] = [1, cpus().length].map((t) => threadResults.find((r) => r.input === input && r.kernel === 'auto' && r.threads === t)?.imagesPerSecond);
    return [input, one && pool ? Number((pool / one).toFixed(2)) : null];
  })),
  pytorch,
  vsPyTorch,
  goalVsPyTorch: 1.5,
  note: 'imagesPerSecond on one process; ratios are measured in the same run (baseline: cpu backend, tf.layers predict; vsCpuLayers uses the winograd path; vsPyTorch: bulk embedding, the median of interleaved rounds, with the Winograd kernel (auto) and without it (off), against the faster of two runs of PyTorch conv4 on as many threads as cores, before and after).',
}, null, 2)}\n`);
process.stdout.write('wrote bench/results/embed.json\n');
