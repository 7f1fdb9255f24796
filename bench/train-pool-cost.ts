/**
 * What splitting an episode over worker threads costs: wall time and CPU time (all threads) per
 * training step of the fused engine on the main thread, on one worker, and on two workers that
 * split each episode, timed in interleaved rounds. Equal CPU time with lower wall time means the
 * threads scale; equal wall time means they did not get the second core. Prints; writes nothing.
 *
 *   npx tsx bench/train-pool-cost.ts [ways]
 */
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { SeededRng } from '../shared/learning/rng.js';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { EpisodeSampler } from '../pretrain/episode-sampler.js';
import { TrainableConv4 } from '../pretrain/trainable-conv4.js';
import { freshAdam, fusedConv4Step } from '../pretrain/fused-conv4-step.js';
import { ParallelConv4Trainer } from '../pretrain/parallel-trainer.js';
await selectBackend('wasm');
const ways = Number(process.argv[2] ?? 20);
const shape = { ways, shots: 5, queries: 5 };
const n = ways * 10;
const input = { rows: 28, cols: 28, channels: 1 };
const data = loadDataset({ name: 'glyphs' });
const sampler = new EpisodeSampler([data.train, data.test], data.baseClasses!, shape);
const rng = new SeededRng(1);
const eps = Array.from({ length: 8 }, () => sampler.next(rng).images);
const params = TrainableConv4.fromModel(buildConv4(input, 1), input).params();
const adam = freshAdam(params);
const pools = [1, 2].map((threads) => ParallelConv4Trainer.start({ params, adam: freshAdam(params), input, layout: shape, backend: 'wasm', threads }));
const [p1, p2] = await Promise.all(pools);
const runs: Record<string, () => Promise<unknown>> = {
  main: async () => fusedConv4Step(params, adam, eps[0]!, n, { layout: shape, offset: 0, total: n }, input, 1e-3),
  pool1: () => p1!.step(eps[0]!, 1e-3),
  pool2: () => p2!.step(eps[0]!, 1e-3),
};
const acc: Record<string, { cpu: number; wall: number; k: number }> = {};
for (let round = 0; round < 5; round++) {
  for (const [name, f] of Object.entries(runs)) {
    await f();
    const c = process.cpuUsage(); const t = performance.now();
    for (let i = 0; i < 3; i++) await f();
    const d = process.cpuUsage(c);
    if (round === 0) continue;
    const a = (acc[name] ??= { cpu: 0, wall: 0, k: 0 });
    a.cpu += (d.user + d.system) / 1000; a.wall += performance.now() - t; a.k += 3;
  }
}
for (const [k, a] of Object.entries(acc)) process.stdout.write(`${k.padEnd(6)} cpu ms/step ${(a.cpu / a.k).toFixed(0)}  wall ms/step ${(a.wall / a.k).toFixed(0)}\n`);
await p1!.close(); await p2!.close();
