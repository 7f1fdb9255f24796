import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { packageRoot, withinPackage } from '../shared/datasets/data-home.js';
import type { LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import cliProgress from 'cli-progress';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { indicesByClass } from '../shared/datasets/image-set.js';
import { checkScenarioAgainstDataset, loadScenarioFile, ScenarioError } from '../shared/scenario/scenario-config.js';
import { selectBackend, type BackendChoice } from '../shared/tensor/tensor-backend.js';
import { CHECKPOINT_DIR, PRETRAIN_DEFAULTS, pretrainConv4, type PretrainConfig } from '../pretrain/episodic-trainer.js';

export interface PretrainCommandOptions {
  out?: string;
  data?: string;
  backend?: BackendChoice;
  episodes?: string;
  engine?: 'fused' | 'autodiff';
  threads?: string;
  quiet?: boolean;
}

/** `protofed pretrain SCENARIO`: episodic ProtoNet training of conv4 on the scenario's base classes. */
export async function pretrainCommand(scenarioPath: string, options: PretrainCommandOptions): Promise<void> {
  const scenario = loadScenarioFile(scenarioPath);
  const outDir = resolve(options.out ?? (scenario.backbone.name === 'conv4' ? scenario.backbone.weights : `models/${scenario.name}-conv4`));
  const data = loadDataset({ ...scenario.dataset, dir: options.data ?? scenario.dataset.dir });
  const trainPerClass = new Map([...indicesByClass(data.train)].map(([c, l]) => [c, l.length]));
  const { base } = checkScenarioAgainstDataset(scenario, { classCount: data.classNames.length, trainPerClass, baseClasses: data.baseClasses, classGroups: data.classGroups }, scenarioPath);
  if (base.length === 0) {
    throw new ScenarioError(`${scenarioPath}: there are no base classes to pretrain on; set dataset.baseClasses or use a dataset with a base split`);
  }
  const config: PretrainConfig = { ...PRETRAIN_DEFAULTS, ...scenario.pretrain, seed: scenario.seed };
  if (options.episodes) config.episodes = Number.parseInt(options.episodes, 10);
  if (!Number.isInteger(config.episodes) || config.episodes < 1) throw new Error(`--episodes must be a positive integer, got ${options.episodes}`);
  const backend = await selectBackend(options.backend ?? scenario.backend);
  const threads = options.threads === undefined ? undefined : Number.parseInt(options.threads, 10);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new Error(`--threads must be a positive integer, got ${options.threads}`);
  const engine = options.engine ?? (backend === 'tensorflow' ? 'autodiff' : 'fused');
  const say = (line: string): void => {
    if (!options.quiet) process.stdout.write(`${line}\n`);
  };
  say(`pretraining conv4${config.filters ? ` (${config.filters} filters)` : ''} on ${base.length} base classes of ${data.name} (${data.train.rows}×${data.train.cols}×${data.train.channels}); ` +
    `${config.ways}-way ${config.shots}-shot ${config.queries}-query, ${config.episodes} episodes, Adam ${config.learningRate} (ε ${config.adamEpsilon}) halved every ${config.halveEvery}, ${config.init} init` +
    (config.augment ? `, augmented ${JSON.stringify(config.augment)}` : '') +
    (config.renderPens?.length ? `, training classes drawn again with pen offsets ${config.renderPens.join(', ')}` : '') + `; backend ${backend}, ${engine} engine` +
    (engine === 'fused' ? ` on ${threads ?? 1} thread(s)` : ''));
  if (existsSync(join(outDir, CHECKPOINT_DIR, 'trainer-state.json'))) say(`resuming from the checkpoint in ${join(outDir, CHECKPOINT_DIR)}`);

  // A progress bar on a terminal; plain lines every 50 episodes in a log.
  const bar = options.quiet || !process.stderr.isTTY ? undefined : new cliProgress.SingleBar({
    format: 'episode {value}/{total} |{bar}| loss {loss} acc {acc} lr {lr} | val {val} | {eta_formatted} left',
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  let lastVal = '  -  ';
  let barStarted = false;
  let emaLoss = NaN;
  let emaAcc = NaN;
  const started = performance.now();
  const { state } = await pretrainConv4(data, base, config, outDir, {
    onEpisode: (episode, loss, acc, lr) => {
      emaLoss = Number.isNaN(emaLoss) ? loss : 0.95 * emaLoss + 0.05 * loss;
      emaAcc = Number.isNaN(emaAcc) ? acc : 0.95 * emaAcc + 0.05 * acc;
      if (!bar && !options.quiet && episode % 50 === 0) {
        say(`episode ${episode}/${config.episodes}  loss ${emaLoss.toFixed(3)}  acc ${emaAcc.toFixed(3)}  lr ${lr.toExponential(1)}  val ${lastVal}`);
      }
      if (!bar) return;
      if (!barStarted) {
        bar.start(config.episodes, episode - 1, fields());
        barStarted = true;
      }
      bar.update(episode, { ...fields(), lr: lr.toExponential(1) });
    },
    // Validation runs after the episode's progress line, so the line names the episode it scored.
    onValidation: (episode, _acc, allWay) => {
      lastVal = `${allWay.toFixed(4)} all-way${config.validateOnPens ? ' (mean over pens)' : ''} at episode ${episode}`;
    },
  }, { engine, ...(threads === undefined ? {} : { threads }) });
  bar?.stop();
  function fields(): Record<string, string> {
    return { loss: emaLoss.toFixed(3), acc: emaAcc.toFixed(3), lr: config.learningRate.toExponential(1), val: lastVal };
  }
  const last = state.history.at(-1);
  const seconds = (performance.now() - started) / 1000;
  const record = {
    command: `protofed pretrain ${process.argv.slice(3).map(portableArgument).join(' ')}`.trim(),
    scenario: scenario.name,
    dataset: { name: data.name, source: withinPackage(data.source), kind: data.kind, sha256: datasetHash(data) },
    baseClasses: base.length,
    trainClasses: state.trainClasses.length,
    validationClasses: state.validationClasses.length,
    config,
    backend,
    engine,
    threads: engine === 'fused' ? threads ?? 1 : undefined,
    episodes: state.episode,
    /** The model in this folder: the checkpoint with the best all-way validation accuracy. */
    model: state.best ? { episode: state.best.episode, validationAllWay: state.best.validationAllWay } : { episode: state.episode },
    finalValidationAccuracy: last?.validationAccuracy ?? null,
    validation: `all-way nearest-mean over the ${state.validationClasses.length} held-out base classes (last quarter of each class's images as queries)` +
      (config.validateOnPens ? `, the mean over their own images and their drawings with pen offsets ${config.renderPens!.join(', ')}; ` : '; ') +
      (config.validationEpisodes > 0 ? `and ${config.validationEpisodes} episodes of ${config.ways}-way ${config.shots}-shot ${config.queries}-query on them` : 'no validation episodes'),
    history: state.history,
    secondsThisRun: seconds,
  };
  writeFileSync(join(outDir, 'PRETRAINED.json'), `${JSON.stringify(record, null, 2)}\n`);
  say(`done: ${state.episode} episodes in ${seconds.toFixed(0)} s; ` +
    (state.best ? `model from episode ${state.best.episode} (all-way validation ${state.best.validationAllWay.toFixed(4)})` : 'no validation; the model is the last') + ` in ${outDir}`);
}

/** A command-line argument as it goes into PRETRAINED.json: paths relative to the package (or the working folder), never the machine's. */
function portableArgument(arg: string): string {
  if (!isAbsolute(arg)) return arg;
  const root = packageRoot() ?? process.cwd();
  const rel = relative(root, arg);
  return rel.startsWith('..') ? `<elsewhere>/${basename(arg)}` : rel;
}

/** SHA-256 of a dataset's images and labels (train, then test): which data a model was trained on. */
function datasetHash(data: LabelledDataset): string {
  const hash = createHash('sha256');
  for (const set of [data.train, data.test]) {
    hash.update(`${set.count}:${set.rows}x${set.cols}x${set.channels};`).update(set.images)
      .update(Buffer.from(set.labels.buffer, set.labels.byteOffset, set.labels.byteLength));
  }
  return `sha256:${hash.digest('hex')}`;
}
