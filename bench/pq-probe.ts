/**
 * How much product quantisation (shared/protocol/codecs/pq.ts) costs on real prototypes: a codebook is
 * trained on the base-class (background) train embeddings of the glyph scenario's conv4, then the
 * field-class prototypes (means of K train shots) are sent through it. For each setting
 * (subspaces × centroids) it reports bytes per vector, codebook bytes, training time, the relative
 * reconstruction error of the prototypes, and all-way nearest-prototype accuracy on the field
 * test images with exact vs decoded prototypes. A few registered codecs are listed for reference.
 *
 *   npx tsx bench/pq-probe.ts            (embeddings come from the EmbeddingStore cache when present)
 */
import { CODECS, createPqCodec, pqCodebookBytes, pqMeanSquaredError, trainPqCodebook, type VectorCodec } from '../shared/protocol/codecs/index.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { indicesByClass } from '../shared/datasets/image-set.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { defaultCacheDir, EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { predictNearest } from '../shared/learning/nearest-prototype.js';
import { SeededRng } from '../shared/learning/rng.js';
import { checkScenarioAgainstDataset, loadScenarioFile } from '../shared/scenario/scenario-config.js';

const SHOTS = [5, 15];
const SETTINGS: Array<{ subspaces: number; centroids: number; trainOn?: 'means' }> = [
  { subspaces: 8, centroids: 256 },
  { subspaces: 16, centroids: 256 },
  { subspaces: 32, centroids: 256 },
  { subspaces: 16, centroids: 16 },
  { subspaces: 32, centroids: 16 },
  { subspaces: 16, centroids: 256, trainOn: 'means' },
];
const REFERENCE: Array<keyof typeof CODECS> = ['f32', 'int8', 'int4', 'binary', 'rp-8', 'rp-16', 'rp-32'];

const scenario = loadScenarioFile('scenarios/glyphs.yaml');
const data = loadDataset(scenario.dataset);
const trainByClass = indicesByClass(data.train);
const testByClass = indicesByClass(data.test);
const trainPerClass = new Map([...trainByClass].map(([c, l]) => [c, l.length]));
const { base, field } = checkScenarioAgainstDataset(scenario, {
  classCount: data.classNames.length, trainPerClass, baseClasses: data.baseClasses, classGroups: data.classGroups,
});
const shape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
const { backbone } = await createBackbone(scenario.backbone, shape, scenario.backend);
const store = new EmbeddingStore(backbone, data, { cacheDir: defaultCacheDir() });
const dim = backbone.dim;

const baseIdx = base.flatMap((c) => trainByClass.get(c) ?? []);
const baseEmb = await store.embed('train', baseIdx);
const fieldTrain = new Map<number, Float32Array>();
for (const c of field) fieldTrain.set(c, await store.embed('train', trainByClass.get(c)!));
const testIdx = field.flatMap((c) => testByClass.get(c) ?? []);
const testEmb = await store.embed('test', testIdx);
const testLabels = testIdx.map((i) => data.test.labels[i]!);
store.close();
backbone.dispose();

/** Means of `shots` train embeddings per class (seeded draw), rows in `classes` order. */
function prototypes(classes: number[], byClass: (c: number) => Float32Array, shots: number, rng: SeededRng): Float64Array {
  const out = new Float64Array(classes.length * dim);
  classes.forEach((c, k) => {
    const all = byClass(c);
    const n = all.length / dim;
    const pick = rng.sample(n, Math.min(shots, n));
    for (const r of pick) for (let i = 0; i < dim; i++) out[k * dim + i]! += all[r * dim + i]! / pick.length;
  });
  return out;
}

function accuracy(means: Float64Array): number {
  const predicted = predictNearest(testEmb, testIdx.length, { classIds: Int32Array.from(field), means, dim });
  let ok = 0;
  predicted.forEach((p, i) => {
    if (p === testLabels[i]) ok++;
  });
  return ok / testIdx.length;
}

function through(codec: VectorCodec, means: Float64Array): { decoded: Float64Array; relError: number } {
  const decoded = new Float64Array(means.length);
  let rel = 0;
  for (let k = 0; k < field.length; k++) {
    const p = means.subarray(k * dim, (k + 1) * dim);
    const d = codec.decode(codec.encode(p), dim);
    decoded.set(d, k * dim);
    let e2 = 0;
    let p2 = 0;
    for (let i = 0; i < dim; i++) {
      e2 += (d[i]! - p[i]!) ** 2;
      p2 += p[i]! ** 2;
    }
    rel += Math.sqrt(e2 / p2);
  }
  return { decoded, relError: rel / field.length };
}

const exact = new Map(SHOTS.map((s) => {
  const means = prototypes(field, (c) => fieldTrain.get(c)!, s, new SeededRng(1).fork(`shots ${s}`));
  return [s, { means, accuracy: accuracy(means) }] as const;
}));
const f32Bytes = 4 * dim;

function evaluate(label: string, codec: VectorCodec, extra: Record<string, unknown>): void {
  const row: Record<string, unknown> = { codec: label, bytes: codec.encodedLength(dim), ofF32: Number((codec.encodedLength(dim) / f32Bytes).toFixed(3)), ...extra };
  for (const s of SHOTS) {
    const { means, accuracy: acc } = exact.get(s)!;
    const { decoded, relError } = through(codec, means);
    const a = accuracy(decoded);
    row[`relErr@${s}`] = Number(relError.toFixed(4));
    row[`acc@${s}`] = Number((100 * a).toFixed(2));
    row[`drop@${s}`] = Number((100 * (acc - a)).toFixed(2));
  }
  process.stdout.write(`${JSON.stringify(row)}\n`);
}

process.stdout.write(
  `${JSON.stringify({ dim, baseTrainRows: baseIdx.length, fieldClasses: field.length, testQueries: testIdx.length, exactAccuracy: Object.fromEntries(SHOTS.map((s) => [`acc@${s}`, Number((100 * exact.get(s)!.accuracy).toFixed(2))])) })}\n`,
);
for (const name of REFERENCE) evaluate(name, CODECS[name], {});

// Base-class 5-shot means, 10 draws per class: the distribution the codec actually sees.
const baseTrain = new Map<number, Float32Array>();
let offset = 0;
for (const c of base) {
  const n = trainByClass.get(c)?.length ?? 0;
  baseTrain.set(c, baseEmb.subarray(offset * dim, (offset + n) * dim));
  offset += n;
}
const meanRows: Float64Array[] = [];
const meanRng = new SeededRng(2).fork('base means');
for (let d = 0; d < 10; d++) meanRows.push(prototypes(base, (c) => baseTrain.get(c)!, 5, meanRng));
const baseMeans = new Float64Array(meanRows.length * base.length * dim);
meanRows.forEach((m, i) => baseMeans.set(m, i * base.length * dim));

for (const { subspaces, centroids, trainOn } of SETTINGS) {
  const [emb, n] = trainOn === 'means' ? [baseMeans, baseMeans.length / dim] : [baseEmb, baseIdx.length];
  const t0 = performance.now();
  const cb = trainPqCodebook(emb, n, dim, { subspaces, centroids, seed: 1 });
  const trainMs = Math.round(performance.now() - t0);
  evaluate(`pq ${subspaces}x${centroids}${trainOn ? ' (trained on base 5-shot means)' : ''}`, createPqCodec(cb), {
    codebookBytes: pqCodebookBytes(cb), trainRows: n, trainMs, trainMse: Number(pqMeanSquaredError(cb, emb, n).toExponential(3)),
  });
}
