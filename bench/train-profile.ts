/**
 * Where a conv4 ProtoNet training step's time goes at 28×28 on one thread: per tfjs kernel
 * (tf.profile) for the autodiff paths (`layers`: tf.layers conv4; `trainable`: TrainableConv4,
 * the pretrain step before pretrain/fused-conv4-step.ts), and per part of the fused step. Prints
 * tables; writes nothing.
 *
 *   npx tsx bench/train-profile.ts [wasm|cpu] [ways] [layers|trainable|fused]
 */
import * as tf from '@tensorflow/tfjs';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { SeededRng } from '../shared/learning/rng.js';
import { selectBackend, type BackendName } from '../shared/tensor/tensor-backend.js';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { EpisodeSampler } from '../pretrain/episode-sampler.js';
import { prototypicalLoss } from '../pretrain/prototypical-loss.js';
import { TrainableConv4 } from '../pretrain/trainable-conv4.js';
import { freshAdam, fusedConv4Step, fusedStepTimings } from '../pretrain/fused-conv4-step.js';

const backend = (process.argv[2] ?? 'wasm') as BackendName;
const ways = Number(process.argv[3] ?? 20);
const paths = process.argv[4] ? [process.argv[4]] : ['layers', 'trainable', 'fused'];
const shape = { ways, shots: 5, queries: 5 };
const n = ways * 10;
const input = { rows: 28, cols: 28, channels: 1 };
await selectBackend(backend);
await tf.setBackend(backend);
const data = loadDataset({ name: 'glyphs' });
const sampler = new EpisodeSampler([data.train, data.test], data.baseClasses!, shape);
const rng = new SeededRng(1);
const write = (line: string): void => void process.stdout.write(`${line}\n`);

for (const path of paths) {
  const model = buildConv4(input, 1);
  const net = TrainableConv4.fromModel(model, input);
  const optimizer = tf.train.adam(1e-3);
  const params = net.params();
  const adam = freshAdam(params);
  const vars = path === 'layers' ? model.trainableWeights.map((w) => w.read() as tf.Variable) : net.trainable();
  const embed = (x: tf.Tensor4D): tf.Tensor2D => (path === 'layers' ? model.apply(x, { training: true }) as tf.Tensor2D : net.forward(x, true));
  const step = async (): Promise<void> => {
    const images = sampler.next(rng).images;
    if (path === 'fused') {
      fusedConv4Step(params, adam, images, n, { layout: shape, offset: 0, total: n }, input, 1e-3);
      return;
    }
    const x = tf.tidy(() => tf.tensor4d(images, [n, 28, 28, 1], 'int32').toFloat().div(255)) as tf.Tensor4D;
    const loss = optimizer.minimize(() => prototypicalLoss(embed(x), shape).loss, true, vars)!;
    await loss.data();
    tf.dispose([x, loss]);
  };
  for (let i = 0; i < 2; i++) await step();
  const steps = 4;
  fusedStepTimings.enabled = true;
  fusedStepTimings.ms = {};
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const ms = (performance.now() - t0) / steps;
  fusedStepTimings.enabled = false;
  write(`\n${path} on ${backend}, ${ways}-way 5-shot 5-query (${n} images): ${ms.toFixed(0)} ms/step, ${(n / ms * 1000).toFixed(0)} images/s`);
  if (path === 'fused') {
    for (const [k, v] of Object.entries(fusedStepTimings.ms).sort((a, b) => b[1] - a[1])) {
      write(`${(v / steps).toFixed(1).padStart(8)} ms ${(100 * v / steps / ms).toFixed(0).padStart(3)}%  ${k}`);
    }
  } else {
    // Kernels nested inside another (customGrad's forward, tidy'd gradient helpers) are counted in both.
    const info = await tf.profile(step);
    const byKernel = new Map<string, { ms: number; calls: number }>();
    for (const k of info.kernels) {
      const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
      const e = byKernel.get(key) ?? { ms: 0, calls: 0 };
      e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      e.calls++;
      byKernel.set(key, e);
    }
    const byName = new Map<string, number>();
    for (const k of info.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0));
    write(`${info.kernels.length} kernel calls; by kernel name (ms in one profiled step):`);
    write([...byName].sort((a, b) => b[1] - a[1]).slice(0, 14).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', '));
    write('largest kernel calls:');
    for (const [k, v] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 16)) {
      write(`${v.ms.toFixed(1).padStart(8)} ms ${String(v.calls).padStart(3)}×  ${k}`);
    }
  }
  optimizer.dispose();
  net.dispose();
  model.dispose();
}
