/**
 * How good each shipped backbone is on the classes it never saw, against raw pixels: all-way
 * nearest-mean accuracy (every train image of every field class makes the prototypes; every test
 * image is classified among all field classes), N-way K-shot episode accuracy, and RankMe.
 * Writes bench/results/backbones.json.
 *
 *   npx tsx bench/backbone-quality.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { withinPackage } from '../shared/datasets/data-home.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { indicesByClass } from '../shared/datasets/image-set.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { defaultCacheDir, EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { rankMe } from '../shared/learning/metrics/rankme.js';
import { predictNearestOnTensors, prototypeMatrix } from '../shared/learning/nearest-prototype.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';
import { SeededRng } from '../shared/learning/rng.js';
import { checkScenarioAgainstDataset, loadScenarioFile } from '../shared/scenario/scenario-config.js';

const EPISODES = 500;

async function quality(scenarioPath: string, episode: { ways: number; shots: number }) {
  const scenario = loadScenarioFile(scenarioPath);
  const data = loadDataset(scenario.dataset);
  const trainByClass = indicesByClass(data.train);
  const testByClass = indicesByClass(data.test);
  const trainPerClass = new Map([...trainByClass].map(([c, l]) => [c, l.length]));
  const { field } = checkScenarioAgainstDataset(scenario, { classCount: data.classNames.length, trainPerClass, baseClasses: data.baseClasses, classGroups: data.classGroups });
  const shape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
  const rows: Record<string, unknown>[] = [];
  for (const spec of [scenario.backbone, { name: 'pixels' as const }]) {
    const { backbone, tensorBackend } = await createBackbone(spec, shape, scenario.backend);
    const store = new EmbeddingStore(backbone, data, { cacheDir: defaultCacheDir() });
    const table = new PrototypeTable(backbone.dim);
    const train = new Map<number, Float32Array>();
    for (const c of field) {
      const e = await store.embed('train', trainByClass.get(c)!);
      train.set(c, e);
      table.addEmbeddings(c, e, e.length / backbone.dim);
    }
    const testIdx = field.flatMap((c) => testByClass.get(c) ?? []);
    const test = await store.embed('test', testIdx);
    const predicted = await predictNearestOnTensors(test, testIdx.length, prototypeMatrix(table));
    let correct = 0;
    testIdx.forEach((idx, i) => {
      if (predicted[i] === data.test.labels[idx]) correct++;
    });
    // Episodes: N field classes, K train shots each as prototypes, every test image of those classes as queries.
    const rng = new SeededRng(1).fork('episodes');
    let episodeSum = 0;
    for (let e = 0; e < EPISODES; e++) {
      const classes = rng.sample(field.length, Math.min(episode.ways, field.length)).map((i) => field[i]!);
      const t = new PrototypeTable(backbone.dim);
      for (const c of classes) {
        const all = train.get(c)!;
        const n = all.length / backbone.dim;
        for (const r of rng.sample(n, episode.shots)) t.addEmbeddings(c, all.subarray(r * backbone.dim, (r + 1) * backbone.dim), 1);
      }
      const q = classes.flatMap((c) => testByClass.get(c) ?? []);
      const qe = await store.embed('test', q);
      const p = await predictNearestOnTensors(qe, q.length, prototypeMatrix(t));
      let ok = 0;
      q.forEach((idx, i) => {
        if (p[i] === data.test.labels[idx]) ok++;
      });
      episodeSum += ok / q.length;
    }
    rows.push({
      backbone: backbone.name, dim: backbone.dim, tensorBackend, modelHash: backbone.modelHash,
      allWayAccuracy: Number((correct / testIdx.length).toFixed(4)),
      [`${episode.ways}way${episode.shots}shotAccuracy`]: Number((episodeSum / EPISODES).toFixed(4)),
      rankMe: Number(rankMe(test, testIdx.length, backbone.dim).toFixed(2)),
    });
    store.close();
    backbone.dispose();
  }
  return { scenario: scenario.name, dataset: `${data.name} (${data.kind}) ${withinPackage(data.source)}`, fieldClasses: field.length, testImages: field.reduce((n, c) => n + (testByClass.get(c)?.length ?? 0), 0), episodes: EPISODES, results: rows };
}

const report = {
  benchmark: 'backbone quality on field classes (never seen in pretraining)',
  date: new Date().toISOString(),
  scenarios: [
    await quality('scenarios/glyphs.yaml', { ways: 20, shots: 5 }),
    await quality('scenarios/fashion-mnist-conv4.yaml', { ways: 5, shots: 5 }),
  ],
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/backbones.json', `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report.scenarios.map((s) => ({ scenario: s.scenario, results: s.results })), null, 1)}\n`);
