/**
 * conv4 ProtoNet training throughput at 28×28 (images per second through a full training step:
 * forward, prototypical loss, backward, Adam) on real glyph episodes, on every tensor backend
 * that loads here, for
 * - `layers`: the baseline, a plain tf.layers conv4 trained with optimizer.minimize (autodiff);
 * - `trainable`: the step `protofed pretrain` ran before this bench (TrainableConv4 + minimize);
 * - `fused`: pretrain/fused-conv4-step.ts on one thread;
 * - `fused-pool`: the same, each episode split over one worker thread per core (synchronised BatchNorm).
 * - `pool-augment-main` and `pool-augment-workers` (wasm): `fused-pool` with the pen augmentation
 *   (AUGMENT), applied on the main thread before each step (how `protofed pretrain` did it) or by
 *   each worker to its own images (how it does it now).
 * Paths are timed in interleaved rounds so that a busy machine slows them alike; ratios are
 * against `layers` measured in the same run on the same backend.
 * Writes bench/results/train.json.
 *
 *   npm run bench:train            (BENCH_SECONDS=… per path and shape on wasm; cpu gets a fifth)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { withinPackage } from '../shared/datasets/data-home.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { SeededRng } from '../shared/learning/rng.js';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { backendFailures, eachLoadableBackend, type BackendName } from '../shared/tensor/tensor-backend.js';
import { EpisodeSampler, type EpisodeShape } from '../pretrain/episode-sampler.js';
import { prototypicalLoss } from '../pretrain/prototypical-loss.js';
import { TrainableConv4 } from '../pretrain/trainable-conv4.js';
import { freshAdam, fusedConv4Step } from '../pretrain/fused-conv4-step.js';
import { ParallelConv4Trainer } from '../pretrain/parallel-trainer.js';
import { augmentImages, drawAugmentation, NO_AUGMENTATION, type AugmentConfig } from '../pretrain/augment.js';

const BUDGET_S = Number(process.env.BENCH_SECONDS ?? 12);
const ROUNDS = 3;
const SHAPES: EpisodeShape[] = [{ ways: 20, shots: 5, queries: 5 }, { ways: 5, shots: 5, queries: 5 }];
const input = { rows: 28, cols: 28, channels: 1 };
const LR = 1e-3;

type PathName = 'layers' | 'trainable' | 'fused' | 'fused-pool' | 'pool-augment-main' | 'pool-augment-workers';
const AUGMENT: AugmentConfig = { ...NO_AUGMENTATION, pen: 0.75, elastic: 0.02 };
interface Trainer {
  step(images: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

const data = loadDataset({ name: 'glyphs' });
const toBatch = (images: Uint8Array, n: number): tf.Tensor4D =>
  tf.tidy(() => tf.tensor4d(images, [n, input.rows, input.cols, input.channels], 'int32').toFloat().div(255));

async function makeTrainer(path: PathName, shape: EpisodeShape, backend: BackendName): Promise<Trainer> {
  const n = shape.ways * (shape.shots + shape.queries);
  if (path === 'layers') {
    const model = buildConv4(input, 1);
    const optimizer = tf.train.adam(LR);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    return {
      async step(images) {
        const x = toBatch(images, n);
        const loss = optimizer.minimize(() => prototypicalLoss(model.apply(x, { training: true }) as tf.Tensor2D, shape).loss, true, vars)!;
        const l = (await loss.data())[0]!;
        tf.dispose([x, loss]);
        return l;
      },
      async close() { optimizer.dispose(); model.dispose(); },
    };
  }
  const model = buildConv4(input, 1);
  const net = TrainableConv4.fromModel(model, input);
  model.dispose();
  if (path === 'trainable') {
    const optimizer = tf.train.adam(LR);
    return {
      async step(images) {
        const x = toBatch(images, n);
        const loss = optimizer.minimize(() => prototypicalLoss(net.forward(x, true), shape).loss, true, net.trainable())!;
        const l = (await loss.data())[0]!;
        tf.dispose([x, loss]);
        return l;
      },
      async close() { optimizer.dispose(); net.dispose(); },
    };
  }
  const params = net.params();
  net.dispose();
  if (path === 'fused') {
    const adam = freshAdam(params);
    return {
      async step(images) {
        return fusedConv4Step(params, adam, images, n, { layout: shape, offset: 0, total: n }, input, LR).loss;
      },
      async close() {},
    };
  }
  const pool = await ParallelConv4Trainer.start({ params, adam: freshAdam(params), input, layout: shape, backend, threads: cpus().length });
  const rng = new SeededRng(2).fork('augment');
  return {
    async step(images) {
      if (path === 'pool-augment-workers') return (await pool.step(images, LR, shape, drawAugmentation(n, input, AUGMENT, rng))).loss;
      if (path === 'pool-augment-main') {
        const augmented = images.slice();
        augmentImages(augmented, n, input, AUGMENT, rng);
        return (await pool.step(augmented, LR)).loss;
      }
      return (await pool.step(images, LR)).loss;
    },
    async close() { await pool.close(); },
  };
}

interface Result {
  backend: BackendName;
  episode: string;
  imagesPerEpisode: number;
  path: PathName;
  threads: number;
  imagesPerSecond: number;
  stepsTimed: number;
  ratioToLayers: number | null;
  /** CPU time of this process (all threads) per 1,000 images: unlike images/s, not inflated by other processes' load. */
  cpuSecondsPer1000Images: number;
}

const results: Result[] = [];
const loadAtStart = loadavg().map((l) => Number(l.toFixed(2)));
const available: BackendName[] = [];
for await (const backend of eachLoadableBackend()) {
  available.push(backend);
  // The cpu backend is ~20× slower: fewer seconds, or the bench takes an hour.
  const budget = backend === 'cpu' ? BUDGET_S / 5 : BUDGET_S;
  // On cpu a tf.layers step of 50 images takes about 90 s: only the 5-way episode, one timed step each for the autodiff paths.
  for (const shape of backend === 'cpu' ? SHAPES.slice(1) : SHAPES) {
    const n = shape.ways * (shape.shots + shape.queries);
    const sampler = new EpisodeSampler([data.train, data.test], data.baseClasses!, shape);
    const rng = new SeededRng(1).fork(`bench-${shape.ways}`);
    const episodes = Array.from({ length: 16 }, () => sampler.next(rng).images);
    const paths: PathName[] = ['layers', 'trainable', 'fused', 'fused-pool', ...(backend === 'cpu' ? [] : ['pool-augment-main', 'pool-augment-workers'] as const)];
    const trainers = new Map<PathName, Trainer>();
    for (const p of paths) trainers.set(p, await makeTrainer(p, shape, backend));
    const timed = new Map<PathName, { steps: number; ms: number; cpuMicros: number }>(paths.map((p) => [p, { steps: 0, ms: 0, cpuMicros: 0 }]));
    let next = 0;
    // Warm-up: two steps each (kernel setup, XNNPACK operator caches, worker start).
    for (const p of paths) {
      const warmUp = backend !== 'cpu' ? 2 : p === 'layers' || p === 'trainable' ? 0 : 1;
      for (let i = 0; i < warmUp; i++) await trainers.get(p)!.step(episodes[next++ % episodes.length]!);
      if (process.env.BENCH_VERBOSE) process.stderr.write(`warmed ${p}\n`);
    }
    const rounds = backend === 'cpu' ? 1 : ROUNDS;
    for (let round = 0; round < rounds; round++) {
      for (const p of paths) {
        const t = timed.get(p)!;
        const started = performance.now();
        const cpuStart = process.cpuUsage();
        let steps = 0;
        while (steps === 0 || performance.now() - started < (budget / rounds) * 1000) {
          const loss = await trainers.get(p)!.step(episodes[next++ % episodes.length]!);
          if (!Number.isFinite(loss)) throw new Error(`${p} diverged`);
          steps++;
        }
        t.ms += performance.now() - started;
        const cpu = process.cpuUsage(cpuStart);
        t.cpuMicros += cpu.user + cpu.system;
        t.steps += steps;
      }
    }
    for (const p of paths) await trainers.get(p)!.close();
    const perSecond = (p: PathName): number => (timed.get(p)!.steps * n) / (timed.get(p)!.ms / 1000);
    for (const p of paths) {
      const r: Result = {
        backend, episode: `${shape.ways}-way ${shape.shots}-shot ${shape.queries}-query`, imagesPerEpisode: n, path: p,
        threads: p === 'fused-pool' || p.startsWith('pool-') ? cpus().length : 1,
        imagesPerSecond: Number(perSecond(p).toPrecision(perSecond(p) < 100 ? 2 : 3)), stepsTimed: timed.get(p)!.steps,
        ratioToLayers: Number((perSecond(p) / perSecond('layers')).toFixed(2)),
        cpuSecondsPer1000Images: Number((timed.get(p)!.cpuMicros / 1e6 / (timed.get(p)!.steps * n) * 1000).toFixed(2)),
      };
      results.push(r);
      process.stdout.write(`${backend.padEnd(6)} ${r.episode.padEnd(22)} ${p.padEnd(10)} ${String(r.imagesPerSecond).padStart(5)} images/s  ×${r.ratioToLayers} (${r.stepsTimed} steps, ${r.cpuSecondsPer1000Images} cpu-s/1000 images)\n`);
    }
  }
}

mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/train.json', `${JSON.stringify({
  benchmark: 'conv4 ProtoNet training throughput, 28x28x1 glyph episodes',
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  unavailableBackends: Object.fromEntries(Object.entries(backendFailures()).map(([name, why]) => [name, withinPackage(why)])),
  loadAverage: { start: loadAtStart, end: loadavg().map((l) => Number(l.toFixed(2))) },
  secondsPerPathAndShape: Object.fromEntries(available.map((b) => [b, b === 'cpu' ? BUDGET_S / 5 : BUDGET_S])),
  augmentation: { paths: ['pool-augment-main', 'pool-augment-workers'], config: AUGMENT },
  results,
  note: 'images/s through forward, loss, backward and Adam; paths timed in interleaved rounds in one process; ratioToLayers is against the tf.layers + optimizer.minimize baseline on the same backend in the same run. fused-pool runs one worker thread per core; on a machine whose cores other processes keep busy (see loadAverage) it cannot get both, and cpuSecondsPer1000Images shows what it costs in CPU time.',
}, null, 2)}\n`);
process.stdout.write('wrote bench/results/train.json\n');
