import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ImageShape } from '../shared/embedding/backbone.js';
import type { LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { buildConv4, type Conv4Init } from '../shared/embedding/conv4.js';
import { SeededRng } from '../shared/learning/rng.js';
import { registerFileModelIO } from '../shared/tensor/file-model-io.js';
import { activeBackend } from '../shared/tensor/tensor-backend.js';
import { AllWayValidation } from './all-way-validation.js';
import { augmentImages, drawAugmentation, isIdentityAugmentation, NO_AUGMENTATION, type AugmentConfig } from './augment.js';
import { canonicalJson } from '../shared/scenario/canonical-json.js';
import { freshAdam, fusedConv4Step, type AdamState, type Conv4Params } from './fused-conv4-step.js';
import { ParallelConv4Trainer } from './parallel-trainer.js';
import { renderedPens } from './rendered-pens.js';
import { EpisodeSampler, type EpisodeShape } from './episode-sampler.js';
import { prototypicalLoss } from './prototypical-loss.js';
import { TrainableConv4 } from './trainable-conv4.js';

export interface PretrainConfig extends EpisodeShape {
  episodes: number;
  learningRate: number;
  /** The learning rate halves every this many episodes. */
  halveEvery: number;
  /** Fraction of the base classes held out for validation (all-way, and episodes). */
  validationFraction: number;
  validateEvery: number;
  /** Episodes of the episode-shaped validation (0: all-way validation only). */
  validationEpisodes: number;
  checkpointEvery: number;
  seed: number;
  /** conv4's kernel initialisation (shared/embedding/conv4.ts). */
  init?: Conv4Init;
  /** conv4's filters per convolution (default 64). */
  filters?: number;
  /** Adam's epsilon (default 1e-7, tf.train.adam's). */
  adamEpsilon?: number;
  /** Random changes to every training image (none when absent). */
  augment?: AugmentConfig;
  /** Generated glyph sets: the training classes drawn again with these pen offsets, as more images of them (rendered-pens.ts). */
  renderPens?: number[];
  /**
   * Validate on the held-out classes drawn with every renderPens pen as well as on their own
   * images: the score that picks the model is the mean of the all-way accuracies, one per pen.
   */
  validateOnPens?: boolean;
}

/** Literature defaults: 5-way 5-shot, 15 queries, Adam 1e-3 halved every 2000 episodes (Snell et al. 2017). */
export const PRETRAIN_DEFAULTS: PretrainConfig = {
  ways: 5, shots: 5, queries: 15, episodes: 2000, learningRate: 1e-3, halveEvery: 2000,
  validationFraction: 0.1, validateEvery: 250, validationEpisodes: 100, checkpointEvery: 250, seed: 1,
  init: 'he-normal', adamEpsilon: 1e-7, renderPens: [], validateOnPens: false,
};

/**
 * A config as this version reads it: options added after it was written take their off values, so
 * a checkpoint from before an option existed still resumes, and one with the option on does not.
 */
function asReadNow(config: PretrainConfig): PretrainConfig {
  return { ...PRETRAIN_DEFAULTS, ...config, ...(config.augment ? { augment: { ...NO_AUGMENTATION, ...config.augment } } : {}) };
}

export interface HistoryEntry {
  episode: number;
  trainLoss: number;
  trainAccuracy: number;
  /** Accuracy of validation episodes shaped like the training ones. */
  validationAccuracy?: number;
  /**
   * All-way nearest-mean accuracy over every held-out class (AllWayValidation): what picks the
   * model. With validateOnPens, the mean over the pens of validationAllWayByPen.
   */
  validationAllWay?: number;
  /** validateOnPens: the all-way accuracy with each pen offset ('0': the set's own images). */
  validationAllWayByPen?: Record<string, number>;
}

export interface TrainerState {
  episode: number;
  config: PretrainConfig;
  dataset: string;
  input: ImageShape;
  trainClasses: number[];
  validationClasses: number[];
  history: HistoryEntry[];
  /** The validation that scored best so far (all-way; the latest of equal scores); its weights are the model in the output folder. */
  best?: { episode: number; validationAllWay: number };
  optimizer: { file: string; specs: tf.io.WeightsManifestEntry[] };
}

export interface PretrainHooks {
  onEpisode?: (episode: number, loss: number, accuracy: number, learningRate: number) => void;
  /** `accuracy`: of the validation episodes (NaN without them); `allWay`: over all held-out classes. */
  onValidation?: (episode: number, accuracy: number, allWay: number) => void;
  onCheckpoint?: (episode: number) => void;
}

/**
 * How the training steps are computed; none of it changes what is learned (test/fused-train-step.test.ts).
 * - `fused` (default on wasm and cpu): pretrain/fused-conv4-step.ts, on the calling thread, or on
 *   `threads` worker threads that split each episode (synchronised BatchNorm). The threads work in
 *   lock step, so they pay off only when the machine's cores are otherwise idle;
 * - `autodiff`: TrainableConv4 + tf.train.adam's minimize (the default on tfjs-node).
 */
export interface PretrainEngine {
  engine?: 'fused' | 'autodiff';
  /** Worker threads for the fused engine (default 1: the calling thread). */
  threads?: number;
}

const STATE_FILE = 'trainer-state.json';
const OPTIMIZER_FILE = 'optimizer.bin';
/** The folder, inside the output folder, of the checkpoint a run resumes from. */
export const CHECKPOINT_DIR = 'checkpoint';

/**
 * Episodic ProtoNet training of conv4 on a dataset's base classes, validated on held-out base
 * classes by all-way nearest-mean accuracy (and by episodes shaped like the training ones).
 * The model (a tfjs LayersModel) in `outDir` is the one that validated best so far: with
 * validation, training picks its checkpoint; without, it is the last. Checkpoints to resume from
 * (the latest weights, the optimizer state and the trainer state) go to `outDir/checkpoint`; a
 * run started on a folder with a checkpoint resumes from it, and the result is the same as an
 * uninterrupted run, since each episode's draw depends only on the seed and the episode number.
 *
 * @example
 * const result = await pretrainConv4(data, data.baseClasses!, PRETRAIN_DEFAULTS, 'models/glyphs-conv4');
 */
export async function pretrainConv4(
  data: LabelledDataset,
  baseClasses: readonly number[],
  config: PretrainConfig,
  outDir: string,
  hooks: PretrainHooks = {},
  engineOptions: PretrainEngine = {},
): Promise<{ state: TrainerState; resumedFrom: number }> {
  registerFileModelIO();
  const backend = activeBackend() ?? (tf.getBackend() as 'wasm' | 'cpu' | 'tensorflow');
  const engine = engineOptions.engine ?? (backend === 'tensorflow' ? 'autodiff' : 'fused');
  const threads = Math.max(1, engineOptions.threads ?? 1);
  const input: ImageShape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
  const datasetId = `${data.name}:${data.classNames.length} classes:${data.train.count}+${data.test.count} images`;
  const classes = new SeededRng(config.seed).fork('validation-split').shuffle([...baseClasses]);
  const nValidation = Math.max(config.validationFraction > 0 ? config.ways : 0, Math.round(classes.length * config.validationFraction));
  if (classes.length - nValidation < config.ways) {
    throw new RangeError(`${baseClasses.length} base classes are too few for ${config.ways}-way episodes with ${nValidation} held out for validation`);
  }
  const validationClasses = classes.slice(0, nValidation).sort((a, b) => a - b);
  const trainClasses = classes.slice(nValidation).sort((a, b) => a - b);
  // Base classes are never evaluated later, so all their images (train and test splits) may be used.
  // The training classes get other pens; the held-out ones only with validateOnPens, each pen its own all-way problem.
  const sampler = new EpisodeSampler([data.train, data.test, ...await renderedPens(data, trainClasses, config.renderPens ?? [])], trainClasses, config);
  const validationSampler = nValidation > 0 && config.validationEpisodes > 0 ? new EpisodeSampler([data.train, data.test], validationClasses, config) : undefined;
  const validationPens = config.validateOnPens ? config.renderPens ?? [] : [];
  if (config.validateOnPens && (validationPens.length === 0 || nValidation === 0)) {
    throw new RangeError('validateOnPens validates on the held-out classes drawn with the renderPens pens: it needs renderPens and validationFraction > 0');
  }
  const allWay = nValidation > 0 ? new AllWayValidation([data.train, data.test], validationClasses) : undefined;
  const penSets = await renderedPens(data, validationClasses, validationPens);
  // With validateOnPens: the set's own images as pen 0, then each pen's drawings.
  const allWayByPen = allWay && validationPens.length > 0
    ? [{ pen: 0, validation: allWay }, ...validationPens.map((pen, i) => ({ pen, validation: new AllWayValidation([penSets[2 * i]!, penSets[2 * i + 1]!], validationClasses) }))]
    : [];
  const checkpointDir = join(outDir, CHECKPOINT_DIR);

  let state: TrainerState = {
    episode: 0, config, dataset: datasetId, input, trainClasses, validationClasses, history: [],
    optimizer: { file: OPTIMIZER_FILE, specs: [] },
  };
  const optimizer = tf.train.adam(config.learningRate, 0.9, 0.999, config.adamEpsilon ?? 1e-7);
  const resumedFrom = existsSync(join(checkpointDir, STATE_FILE)) ? await loadCheckpoint() : 0;
  const net = resumedFrom > 0 ? await loadCheckpointModel() : freshNet();

  function freshNet(): TrainableConv4 {
    const model = buildConv4(input, config.seed, config.init, config.filters);
    const fresh = TrainableConv4.fromModel(model, input);
    model.dispose();
    return fresh;
  }

  async function loadCheckpointModel(): Promise<TrainableConv4> {
    const model = await tf.loadLayersModel(`file://${join(checkpointDir, 'model.json')}`);
    const loaded = TrainableConv4.fromModel(model, input);
    model.dispose();
    return loaded;
  }

  async function loadCheckpoint(): Promise<number> {
    const saved = JSON.parse(readFileSync(join(checkpointDir, STATE_FILE), 'utf8')) as TrainerState;
    const same = canonicalJson({ ...asReadNow(saved.config), episodes: 0 }) === canonicalJson({ ...asReadNow(config), episodes: 0 }) && saved.dataset === datasetId;
    if (!same) {
      throw new Error(`${outDir} holds a checkpoint of a different run (config or dataset differ); choose another --out or delete it`);
    }
    if (saved.optimizer.specs.length > 0) {
      const bytes = readFileSync(join(checkpointDir, saved.optimizer.file));
      const named = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, saved.optimizer.specs);
      await optimizer.setWeights(saved.optimizer.specs.map((s) => ({ name: s.name, tensor: named[s.name]! })));
    }
    state = { ...saved, config };
    return saved.episode;
  }

  async function saveModel(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const model = net.toModel();
    await model.save(`file://${dir}`);
    model.dispose();
  }

  async function saveCheckpoint(): Promise<void> {
    await saveModel(checkpointDir);
    const weights = await optimizer.getWeights();
    const { data: bytes, specs } = await tf.io.encodeWeights(weights);
    writeFileSync(join(checkpointDir, OPTIMIZER_FILE), Buffer.from(bytes as ArrayBuffer));
    state.optimizer = { file: OPTIMIZER_FILE, specs };
    writeFileSync(join(checkpointDir, STATE_FILE), `${JSON.stringify(state, null, 1)}\n`);
    hooks.onCheckpoint?.(state.episode);
  }

  const rngFor = (kind: string, episode: number): SeededRng => new SeededRng(config.seed).fork(`${kind}-${episode}`);
  const toBatch = (images: Uint8Array, n: number): tf.Tensor4D =>
    tf.tidy(() => tf.tensor4d(images, [n, input.rows, input.cols, input.channels], 'int32').toFloat().div(255));
  const perEpisode = config.ways * (config.shots + config.queries);

  const embed = async (images: Uint8Array, n: number): Promise<Float32Array> => {
    const per = input.rows * input.cols * input.channels;
    const out: Float32Array[] = [];
    for (let start = 0; start < n; start += 512) {
      const count = Math.min(512, n - start);
      const e = tf.tidy(() => net.forward(toBatch(images.subarray(start * per, (start + count) * per), count), false));
      out.push((await e.data()) as Float32Array);
      e.dispose();
    }
    const all = new Float32Array(out.reduce((s, a) => s + a.length, 0));
    let at = 0;
    for (const a of out) {
      all.set(a, at);
      at += a.length;
    }
    return all;
  };

  const validate = async (episode: number): Promise<Pick<HistoryEntry, 'validationAccuracy' | 'validationAllWay' | 'validationAllWayByPen'>> => {
    if (!allWay) return {};
    let accuracy: number | undefined;
    if (validationSampler) {
      let sum = 0;
      for (let v = 0; v < config.validationEpisodes; v++) {
        const ep = validationSampler.next(rngFor('validation', v));
        const acc = tf.tidy(() => {
          const x = toBatch(ep.images, perEpisode);
          return prototypicalLoss(net.forward(x, false), config).accuracy;
        });
        sum += (await acc.data())[0]!;
        acc.dispose();
      }
      accuracy = sum / config.validationEpisodes;
    }
    let allWayAccuracy: number;
    let byPen: Record<string, number> | undefined;
    if (allWayByPen.length > 0) {
      byPen = {};
      for (const { pen, validation } of allWayByPen) byPen[String(pen)] = await validation.accuracy(embed);
      allWayAccuracy = Object.values(byPen).reduce((a, b) => a + b, 0) / allWayByPen.length;
    } else {
      allWayAccuracy = await allWay.accuracy(embed);
    }
    hooks.onValidation?.(episode, accuracy ?? NaN, allWayAccuracy);
    // A tie goes to the later checkpoint: it has trained longer at a smaller learning rate, and a
    // few hundred held-out queries tie often once the accuracy nears 1.
    if (!state.best || allWayAccuracy >= state.best.validationAllWay) {
      state.best = { episode, validationAllWay: allWayAccuracy };
      await saveModel(outDir);
    }
    return { ...(accuracy === undefined ? {} : { validationAccuracy: accuracy }), validationAllWay: allWayAccuracy, ...(byPen ? { validationAllWayByPen: byPen } : {}) };
  };

  // The fused engine keeps the weights and Adam's state as arrays (in worker threads with the
  // pool); they go back into `net` and `optimizer` for validation and checkpoints.
  let fused: { params: Conv4Params; adam: AdamState; pool?: ParallelConv4Trainer } | undefined;
  if (engine === 'fused') {
    const params = net.params();
    const adam = { ...await adamStateOf(optimizer, params), ...(config.adamEpsilon === undefined ? {} : { epsilon: config.adamEpsilon }) };
    fused = { params, adam };
    if (threads > 1) fused.pool = await ParallelConv4Trainer.start({ params, adam, input, layout: config, backend, threads });
  }
  const syncBack = async (): Promise<void> => {
    if (!fused) return;
    if (fused.pool) Object.assign(fused, await fused.pool.state());
    net.assign(fused.params);
    await setAdamState(optimizer, net.trainable(), fused.adam);
  };

  let lossSum = 0;
  let accSum = 0;
  let count = 0;
  try {
    for (let episode = state.episode + 1; episode <= config.episodes; episode++) {
      const learningRate = config.learningRate * 0.5 ** Math.floor((episode - 1) / config.halveEvery);
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
      const ep = sampler.next(rngFor('train', episode));
      const augment = config.augment && !isIdentityAugmentation(config.augment) ? config.augment : undefined;
      // The pool's workers augment their own images; the draws are made here, in the same order.
      const draws = augment && fused?.pool ? drawAugmentation(perEpisode, input, augment, rngFor('augment', episode)) : undefined;
      if (augment && !draws) augmentImages(ep.images, perEpisode, input, augment, rngFor('augment', episode));
      let l: number;
      let a: number;
      if (fused?.pool) {
        ({ loss: l, accuracy: a } = await fused.pool.step(ep.images, learningRate, config, draws));
      } else if (fused) {
        ({ loss: l, accuracy: a } = fusedConv4Step(fused.params, fused.adam, ep.images, perEpisode, { layout: config, offset: 0, total: perEpisode }, input, learningRate));
      } else {
        const x = toBatch(ep.images, perEpisode);
        let accuracy: tf.Scalar | undefined;
        const loss = optimizer.minimize(() => {
          const result = prototypicalLoss(net.forward(x, true), config);
          accuracy = tf.keep(result.accuracy);
          return result.loss;
        }, true, net.trainable())!;
        [l, a] = [(await loss.data())[0]!, (await accuracy!.data())[0]!];
        tf.dispose([x, loss, accuracy!]);
      }
      if (!Number.isFinite(l)) throw new Error(`training diverged at episode ${episode} (loss ${l}); lower the learning rate`);
      lossSum += l;
      accSum += a;
      count++;
      state.episode = episode;
      hooks.onEpisode?.(episode, l, a, learningRate);
      const validateNow = episode % config.validateEvery === 0 || episode === config.episodes;
      const checkpointNow = episode % config.checkpointEvery === 0 || episode === config.episodes;
      if (validateNow || checkpointNow) await syncBack();
      if (validateNow) {
        state.history.push({ episode, trainLoss: lossSum / count, trainAccuracy: accSum / count, ...await validate(episode) });
        lossSum = accSum = count = 0;
      }
      if (checkpointNow) await saveCheckpoint();
      // Without validation, the model is the last one.
      if (episode === config.episodes && !allWay) await saveModel(outDir);
    }
  } finally {
    await fused?.pool?.close();
  }
  if (resumedFrom >= config.episodes) {
    await saveCheckpoint();
    if (!allWay) await saveModel(outDir);
  }
  net.dispose();
  optimizer.dispose();
  return { state, resumedFrom };
}

/** Adam's state as arrays, from a tf.train.adam that may hold a resumed checkpoint's moments. */
async function adamStateOf(optimizer: tf.Optimizer, params: Conv4Params): Promise<AdamState> {
  const weights = await optimizer.getWeights();
  if (weights.length <= 1) return freshAdam(params);
  const moments = weights.slice(1);
  const half = moments.length / 2;
  const read = async (t: tf.Tensor): Promise<Float32Array> => Float32Array.from(await t.data());
  return {
    iterations: (await weights[0]!.tensor.data())[0]!,
    m: await Promise.all(moments.slice(0, half).map((w) => read(w.tensor))),
    v: await Promise.all(moments.slice(half).map((w) => read(w.tensor))),
  };
}

/** Puts Adam's state into a tf.train.adam, so that it saves (and resumes) as the autodiff engine's does. */
async function setAdamState(optimizer: tf.Optimizer, variables: tf.Variable[], adam: AdamState): Promise<void> {
  const named = [
    { name: 'iter', tensor: tf.scalar(adam.iterations, 'int32') },
    ...variables.map((v, i) => ({ name: `${v.name}/m`, tensor: tf.tensor(adam.m[i]!, v.shape) })),
    ...variables.map((v, i) => ({ name: `${v.name}/v`, tensor: tf.tensor(adam.v[i]!, v.shape) })),
  ];
  const old = await optimizer.getWeights();
  await optimizer.setWeights(named);
  // setWeights keeps copies (as variables) of the moments; the old ones and the inputs can go.
  tf.dispose([...named.map((w) => w.tensor), ...old.map((w) => w.tensor)]);
}
