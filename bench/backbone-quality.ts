/**
 * How good each shipped backbone is on the classes it never saw, against raw pixels: all-way
 * nearest-mean accuracy (every train image of every field class makes the prototypes; every test
 * image is classified among all field classes), N-way K-shot episode accuracy, and RankMe.
 *
 * The glyph field classes are also scored on re-renderings made at bench time by the glyph
 * generator (shared/datasets/glyph-generator.ts, a development dependency): the same drawers
 * drawn with thinner pens (ink eroded by 2, 1.5 and 1 steps, GLYPH_PENS) and thicker ones (dilated),
 * so a backbone that depends on the shipped renderer's stroke width shows it. For each, the share
 * of test images whose strokes the pen broke or merged (stroke-changes.ts), and the all-way
 * accuracy on those and on the rest.
 * Writes bench/results/backbones.json.
 *
 *   npx tsx bench/backbone-quality.ts
 *   npx tsx bench/backbone-quality.ts --model /tmp/exp/a --model /tmp/exp/b --out /tmp/exp/quality.json
 *     (glyph models other than the shipped one, on the glyph field classes only)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { withinPackage } from '../shared/datasets/data-home.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { gatherImages, indicesByClass } from '../shared/datasets/image-set.js';
import type { ImageSet, LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { STROKE_THRESHOLD, strokeChanges, type StrokeChanges } from '../shared/datasets/stroke-changes.js';
import { renderedPens } from '../pretrain/rendered-pens.js';
import type { Backbone } from '../shared/embedding/backbone.js';
import { createBackbone, type BackboneSpec } from '../shared/embedding/backbone-registry.js';
import { defaultCacheDir, EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { rankMe } from '../shared/learning/metrics/rankme.js';
import { predictNearestOnTensors, prototypeMatrix } from '../shared/learning/nearest-prototype.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';
import { SeededRng } from '../shared/learning/rng.js';
import { checkScenarioAgainstDataset, loadScenarioFile } from '../shared/scenario/scenario-config.js';

const EPISODES = 500;
/**
 * Pen steps of the glyph re-renderings (1/84 of the font size each: a quarter pixel at 28×28 per
 * side): two steps and one step each way, and one and a half thinner, between the two thinner pens
 * where the model shipped before session 5 scores what it scored on issue 13's thinner renderer.
 */
const GLYPH_PENS = { thin: -2, thick: 2, slightlyThin: -1, slightlyThick: 1, thinOneAndAHalf: -1.5 } as const;

interface Episode {
  ways: number;
  shots: number;
}

/**
 * All-way accuracy, N-way K-shot episode accuracy and RankMe of one backbone on `field` classes of
 * `data`; `correct` says which test images the all-way classification got right, in field order.
 */
async function score(backbone: Backbone, data: LabelledDataset, field: readonly number[], episode: Episode): Promise<{ figures: Record<string, number>; correct: boolean[] }> {
  const trainByClass = indicesByClass(data.train);
  const testByClass = indicesByClass(data.test);
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
  const correct = testIdx.map((idx, i) => predicted[i] === data.test.labels[idx]);
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
  store.close();
  return {
    figures: {
      allWayAccuracy: accuracy(correct),
      [`${episode.ways}way${episode.shots}shotAccuracy`]: Number((episodeSum / EPISODES).toFixed(4)),
      rankMe: Number(rankMe(test, testIdx.length, backbone.dim).toFixed(2)),
    },
    correct,
  };
}

function accuracy(correct: readonly boolean[]): number {
  return Number((correct.filter(Boolean).length / Math.max(1, correct.length)).toFixed(4));
}

/**
 * All-way accuracy on a re-rendering's test images whose strokes the pen kept and on those it broke
 * or merged (StrokeChanges), beside the field accuracy on the same drawers.
 */
function byStrokes(changes: StrokeChanges, correct: readonly boolean[], fieldCorrect: readonly boolean[]) {
  const part = (changed: boolean) => {
    const at = changes.changed.flatMap((c, i) => (c === changed ? [i] : []));
    return { images: at.length, allWayAccuracy: accuracy(at.map((i) => correct[i]!)), fieldAllWayAccuracy: accuracy(at.map((i) => fieldCorrect[i]!)) };
  };
  return { strokesKept: part(false), strokesChanged: part(true) };
}

/** Image i of both sets is one drawer's (the same class, in the same order), or this throws. */
function checkSameDrawers(field: ImageSet, drawn: ImageSet): void {
  if (field.count !== drawn.count || field.labels.some((l, i) => drawn.labels[i] !== l)) {
    throw new Error(`internal: the re-rendering's ${drawn.count} test images do not follow the field's ${field.count} class by class`);
  }
}

/** The field classes of a glyph set drawn again with each of GLYPH_PENS, as datasets over the same class ids. */
async function glyphRerenderings(data: LabelledDataset, field: readonly number[]): Promise<{ name: string; penOffset: number; data: LabelledDataset; seconds: number; changes: StrokeChanges }[]> {
  const testByClass = indicesByClass(data.test);
  const indices = field.flatMap((c) => testByClass.get(c) ?? []);
  const fieldTest: ImageSet = { ...data.test, images: gatherImages(data.test, indices), labels: Int32Array.from(indices, (i) => data.test.labels[i]!), count: indices.length };
  const out = [];
  for (const [name, penOffset] of Object.entries(GLYPH_PENS)) {
    const started = performance.now();
    const [train, test] = (await renderedPens(data, field, [penOffset])) as [ImageSet, ImageSet];
    checkSameDrawers(fieldTest, test);
    out.push({
      name, penOffset, seconds: (performance.now() - started) / 1000,
      data: { name: `${data.name}-pen${penOffset > 0 ? '+' : ''}${penOffset}`, source: 'generated', kind: 'rendered-for-bench', classNames: data.classNames, train, test },
      changes: strokeChanges(fieldTest, test),
    });
  }
  return out;
}

async function quality(scenarioPath: string, episode: Episode, options: { models?: string[]; pixels?: boolean; rerender?: boolean } = {}) {
  const scenario = loadScenarioFile(scenarioPath);
  const data = loadDataset(scenario.dataset);
  const testByClass = indicesByClass(data.test);
  const trainPerClass = new Map([...indicesByClass(data.train)].map(([c, l]) => [c, l.length]));
  const { field } = checkScenarioAgainstDataset(scenario, { classCount: data.classNames.length, trainPerClass, baseClasses: data.baseClasses, classGroups: data.classGroups });
  const shape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
  const variants = options.rerender ? await glyphRerenderings(data, field) : [];
  const specs: BackboneSpec[] = options.models
    ? options.models.map((weights) => ({ name: 'conv4', weights: resolve(weights) }) as BackboneSpec)
    : [scenario.backbone, ...(options.pixels === false ? [] : [{ name: 'pixels' } as BackboneSpec])];
  const rows: Record<string, unknown>[] = [];
  for (const spec of specs) {
    const { backbone, tensorBackend } = await createBackbone(spec, shape, scenario.backend);
    const fieldScore = await score(backbone, data, field, episode);
    const row: Record<string, unknown> = {
      backbone: backbone.name, dim: backbone.dim, tensorBackend, modelHash: backbone.modelHash,
      ...(options.models && spec.name === 'conv4' ? { model: relative(process.cwd(), spec.weights) } : {}),
      ...fieldScore.figures,
    };
    for (const v of variants) {
      const { figures, correct } = await score(backbone, v.data, field, episode);
      row[`${v.name}Pen`] = { ...figures, ...byStrokes(v.changes, correct, fieldScore.correct) };
    }
    rows.push(row);
    process.stderr.write(`${scenario.name} ${row.model ?? backbone.name}: ${JSON.stringify(row, (k, val) => (k === 'modelHash' ? undefined : val))}\n`);
    backbone.dispose();
  }
  return {
    scenario: scenario.name, date: new Date().toISOString(), dataset: `${data.name} (${data.kind}) ${withinPackage(data.source)}`, fieldClasses: field.length,
    testImages: field.reduce((n, c) => n + (testByClass.get(c)?.length ?? 0), 0), episodes: EPISODES,
    ...(variants.length > 0 ? {
      rerenderings: variants.map((v) => ({
        name: `${v.name}Pen`, penOffset: v.penOffset, seconds: Number(v.seconds.toFixed(1)),
        how: `renderGlyphClasses: the field classes' drawers again, ink ${v.penOffset < 0 ? 'eroded' : 'dilated'} ${Math.abs(v.penOffset)} pen step(s) more`,
        inkOfField: Number(v.changes.inkRatio.toFixed(3)),
        strokesChangedShare: Number(v.changes.changedShare.toFixed(3)),
      })),
      strokes: `strokesChangedShare: the share of field test images whose number of strokes (8-connected groups of pixels at ≥ ${STROKE_THRESHOLD}/255) the pen changed; strokesKept / strokesChanged: all-way accuracy on those test images, and the field's on the same drawers`,
    } : {}),
    results: rows,
  };
}

const { values } = parseArgs({ options: { model: { type: 'string', multiple: true }, out: { type: 'string' } } });
const models = values.model;
const report = {
  benchmark: 'backbone quality on field classes (never seen in pretraining)',
  date: new Date().toISOString(),
  scenarios: models
    ? [await quality('scenarios/glyphs.yaml', { ways: 20, shots: 5 }, { models, rerender: true })]
    : [
      await quality('scenarios/glyphs.yaml', { ways: 20, shots: 5 }, { rerender: true }),
      await quality('scenarios/fashion-mnist-conv4.yaml', { ways: 5, shots: 5 }),
    ],
};
const out = values.out ?? 'bench/results/backbones.json';
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report.scenarios.map((s) => ({ scenario: s.scenario, results: s.results })), null, 1)}\n`);
