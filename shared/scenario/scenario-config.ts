import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { CODEC_NAMES } from '../protocol/codecs/index.js';
import { downlinkOf, isCodecSpec } from '../protocol/codecs/codec-spec.js';
import { DEFAULT_HEAD_TRAINING, STRATEGIES } from '../protocol/messages.js';
import { backboneSchema, datasetSchema, positiveInt } from './component-schemas.js';
import { strategyNamed } from '../strategies/registry.js';

export { backboneSchema, datasetSchema };

export class ScenarioError extends Error {}

/** One number, or a [min, max] range with min <= max. */
function linkValue(value: z.ZodNumber) {
  return z.union([value, z.tuple([value, value]).refine(([lo, hi]) => lo <= hi, { message: 'a range is [min, max] with min <= max' })]);
}
const codecSpec = z.string().refine(isCodecSpec, { message: `expected a codec (${CODEC_NAMES.join(', ')}), optionally with "+deflate" (and "delta+" before it, uplink only)` });

const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.number().int().min(0).default(1),
  dataset: datasetSchema,
  /** Embeddings of learned backbones are cached on disk, keyed by model, data and split. */
  cache: z.strictObject({
    enabled: z.boolean().default(true),
    /** Cache folder; $PROTOFED_CACHE/embeddings or ~/.cache/protofed/embeddings when absent. */
    dir: z.string().min(1).optional(),
  }).default({ enabled: true }),
  embedding: z.strictObject({
    /** Worker threads for the coordinator's bulk embedding; one per core when absent. */
    threads: positiveInt.max(64).optional(),
  }).default({}),
  /** Tensor backend for learned backbones: tfjs-node when it loads, else wasm, else cpu. */
  backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  backbone: backboneSchema.default({ name: 'pixels' }),
  /** Episodic pretraining of conv4 on the base classes (`protofed pretrain`). */
  pretrain: z.strictObject({
    ways: positiveInt.default(5),
    shots: positiveInt.default(5),
    queries: positiveInt.default(15),
    episodes: positiveInt.default(2000),
    learningRate: z.number().positive().default(1e-3),
    halveEvery: positiveInt.default(2000),
    validationFraction: z.number().min(0).max(0.5).default(0.1),
    validateEvery: positiveInt.default(250),
    /** Episodes of the episode-shaped validation; 0 keeps only the all-way validation. */
    validationEpisodes: z.number().int().min(0).default(100),
    checkpointEvery: positiveInt.default(250),
    /** How conv4's kernels start: tfjs's he-normal (truncated), PyTorch's Conv2d default (kaiming-uniform, a = √5), or glorot-uniform. */
    init: z.enum(['he-normal', 'kaiming-uniform', 'glorot-uniform']).default('he-normal'),
    /** conv4's filters per convolution, and so its embedding size at 28×28 (64: the classic conv4). */
    filters: positiveInt.max(512).optional(),
    /** Adam's epsilon: tf.train.adam's 1e-7 by default; PyTorch's is 1e-8. */
    adamEpsilon: z.number().positive().max(1e-2).default(1e-7),
    /**
     * Generated glyph sets only: the training base classes drawn again by the glyph generator with
     * each of these pen offsets (1/84 of the font size; < 0 thinner; whole or half steps), as more
     * images of each class.
     */
    renderPens: z.array(z.number().min(-4).max(4).refine((p) => Number.isInteger(2 * p), { message: 'a pen offset is a whole or half number of steps' })
      .refine((p) => p !== 0, { message: 'a pen offset of 0 draws the images the set already has' }))
      .max(8).refine((pens) => new Set(pens).size === pens.length, { message: 'pen offsets must differ' }).default([]),
    /**
     * Validate on the held-out base classes drawn with every renderPens pen as well: the mean of
     * the pens' all-way accuracies picks the checkpoint.
     */
    validateOnPens: z.boolean().default(false),
    /**
     * Random changes to each training image (pretrain/augment.ts), each ± its value drawn per
     * image; ink is bright on dark, as in the glyph sets.
     */
    augment: z.strictObject({
      /** 3×3 grey-level dilations (thicker pen) or erosions (thinner); fractions blend between widths. */
      strokeWidth: z.number().min(0).max(3).default(0),
      /** The same at 4× resolution, in pixels of stroke half-width (0.5: half a pixel thinner or thicker on each side). */
      pen: z.number().min(0).max(2).default(0),
      rotationDegrees: z.number().min(0).max(45).default(0),
      /** Relative size change, e.g. 0.1 for 0.9–1.1×. */
      scale: z.number().min(0).max(0.5).default(0),
      shear: z.number().min(0).max(0.5).default(0),
      /** Shift, as a fraction of the image side. */
      translation: z.number().min(0).max(0.25).default(0),
      /** Elastic displacement on a 4×4 lattice, as a fraction of the image side. */
      elastic: z.number().min(0).max(0.1).default(0),
      /** Ink strength, in powers of 2: 1 for 0.5–2× (faint to saturated strokes). */
      ink: z.number().min(0).max(3).default(0),
    }).optional(),
  }).refine((p) => !p.validateOnPens || p.renderPens.length > 0, { message: 'validateOnPens validates on the held-out classes drawn with the renderPens pens: set renderPens', path: ['validateOnPens'] }).optional(),
  clients: z.strictObject({
    /** How many clients; above 1,024 only in population mode. */
    count: positiveInt.max(100_000_000).default(4),
    /**
     * process: one forked process per client, socket.io over loopback; virtual: all clients in this
     * process; remote: clients on other hosts join with `protofed client` (ids c0, c1, …);
     * population: a large virtual population in shards on worker threads, `perMission` sampled
     * clients per mission (simulation/population).
     */
    mode: z.enum(['process', 'virtual', 'remote', 'population']).default('process'),
    /** population: clients sampled for each mission (all of them when absent). */
    perMission: positiveInt.optional(),
    /** population: worker threads for the clients (one per core but the coordinator's when absent; 0 keeps them in the main thread). */
    workers: z.number().int().min(0).max(256).optional(),
    /** How often a client process that dies is replaced before the run fails. */
    maxRestarts: z.number().int().min(0).default(2),
    /** Fraction of the clients that take part in each mission, drawn with the seed. */
    participation: z.number().gt(0).max(1).default(1),
    /**
     * remote: serve the run's dataset, in one file, to every client with a key (/protofed/dataset-pack:
     * a web browser's demo without data of its own). Off unless asked for: a key then also gives the data.
     */
    serveDataset: z.boolean().default(false),
  }).default({ count: 4, mode: 'process', maxRestarts: 2, participation: 1, serveDataset: false }),
  missions: z.strictObject({
    /**
     * fed-recon: each client draws classes at random every mission, images without replacement (a
     * class comes back with fresh images). class-incremental: each class is learned once, in order.
     * dirichlet: like fed-recon, but each client draws classes by its own Dirichlet(α) distribution.
     * overlapping: every client learns every class, `lag` missions after the previous client.
     * stream: task-free; each mission is a tick in which a client draws shotsPerClass examples in
     * all from a Gaussian window that drifts along the class order (classesPerClient is unused).
     */
    schedule: z.enum(['fed-recon', 'class-incremental', 'dirichlet', 'overlapping', 'stream']).default('fed-recon'),
    /**
     * sync: a mission ends when its clients have delivered (see timeouts.deadlineMs); async: no
     * barrier, merge on arrival, and send the table every broadcastEveryMs or broadcastEveryUpdates.
     */
    merge: z.enum(['sync', 'async']).default('sync'),
    broadcastEveryMs: positiveInt.optional(),
    broadcastEveryUpdates: positiveInt.optional(),
    /** overlapping: missions between two clients learning the same block of classes. */
    lag: positiveInt.default(2),
    /** dirichlet: concentration α of each client's class distribution (small: few classes per client). */
    alpha: z.number().positive().default(0.5),
    /** stream: classes each client's position advances along the class order per mission (tick). */
    streamSpeed: z.number().positive().default(0.25),
    /** stream: width (standard deviation, in classes) of the window a client draws its classes from. */
    streamWidth: z.number().positive().default(1.5),
    /**
     * fed-recon, class-incremental, overlapping, stream: take the field classes in the listed (or
     * dataset) order instead of a seeded draw. (dirichlet draws proportions per class; order does not enter.)
     */
    fixedClassOrder: z.boolean().default(false),
    /** Field classes are the classes of these groups (e.g. mini-ImageNet's "test" split). */
    fieldGroups: z.array(z.string().min(1)).min(1).optional(),
    /** The most missions to run; the run ends earlier when the field train images run out. */
    count: positiveInt,
    classesPerClient: positiveInt,
    shotsPerClass: positiveInt,
    /** Classes the clients learn; every class that is not a base class when absent. */
    fieldClasses: z.array(z.number().int().min(0)).min(1).optional(),
  }),
  /** fedavg-head: each client's local SGD per mission. */
  fedavgHead: z.strictObject({
    epochs: positiveInt.max(10_000).default(DEFAULT_HEAD_TRAINING.epochs),
    learningRate: z.number().positive().default(DEFAULT_HEAD_TRAINING.learningRate),
    batchSize: positiveInt.default(DEFAULT_HEAD_TRAINING.batchSize),
  }).default({ ...DEFAULT_HEAD_TRAINING }),
  /** How clients build updates and how they are merged (see shared/protocol/messages.ts STRATEGIES). */
  strategy: z.enum(STRATEGIES).default('protofed'),
  /**
   * A codec name (see shared/codecs), optionally with "+deflate" for lossless deflate on top; the
   * uplink may start with "delta+" to encode each class's change against the held global prototype.
   */
  codec: z.strictObject({
    uplink: codecSpec.default('f32'),
    downlink: codecSpec.refine((spec) => downlinkOf(spec) === spec, { message: 'delta encoding is for the uplink only: on the downlink a client\'s table would depend on every version it passed through, not on its version alone' }).default('f32'),
  }).default({ uplink: 'f32', downlink: 'f32' }),
  evaluation: z.strictObject({
    /** Test images per class to evaluate on; all of them when absent. */
    testPerClass: positiveInt.optional(),
    /**
     * Participants per mission that evaluate their own table besides the global one (a seeded
     * sample): all of them when absent, none in population mode.
     */
    clientSample: z.number().int().min(0).optional(),
  }).default({}),
  timeouts: z.strictObject({
    /** How long one mission phase may wait for its clients. */
    phaseMs: positiveInt.default(120_000),
    /** How long the coordinator waits for all clients to connect. */
    connectMs: positiveInt.default(60_000),
    /**
     * Sync missions with a deadline: once this long has passed and a `quorum` of the taking-part
     * clients has delivered, the mission is merged without the rest. Their late updates are
     * merged when they arrive (in a later mission), never lost. Absent: wait for every client.
     */
    deadlineMs: positiveInt.optional(),
    quorum: z.number().gt(0).max(1).default(1),
    /** At the end, how long to wait for updates still owed by late clients; what has not come by then is reported lost. */
    drainMs: positiveInt.optional(),
  }).default({ phaseMs: 120_000, connectMs: 60_000, quorum: 1 }),
  /**
   * A link model per client: the counted bytes become simulated transfer time, reported beside
   * the measured wall time. Each value is one number for every client, or a [min, max] range from
   * which each client draws its own (seeded; bandwidth and latency log-uniformly). Absent: no
   * simulated time.
   */
  link: z.strictObject({
    bandwidthMbps: linkValue(z.number().positive()),
    latencyMs: linkValue(z.number().positive()).or(z.literal(0)).default(0),
    loss: linkValue(z.number().min(0).lt(1)).default(0),
  }).optional(),
  faults: z.strictObject({
    /** Kill a client process once, when it receives the given mission (0-based), to exercise replacement. */
    crash: z.array(z.strictObject({ client: z.number().int().min(0), mission: z.number().int().min(0) })).default([]),
    /** Simulated stragglers: each client, in each mission, with this probability (seeded) holds its update back for delayMs. */
    stragglers: z.strictObject({ probability: z.number().min(0).max(1), delayMs: positiveInt }).optional(),
    /** Simulated dropouts: each client, in each mission, with this probability (seeded) ignores the mission. Needs timeouts.deadlineMs. */
    dropouts: z.strictObject({ probability: z.number().min(0).max(1) }).optional(),
    /**
     * Simulated adversarial clients, each sending poisoned updates: `scale` multiplies every mean by
     * `factor`; `inflate-counts` claims 2^40 examples per class; `unassigned-classes` adds classes it
     * was never assigned, with 2^40 examples each. The coordinator refuses the last two (they are
     * not the work assigned); `scale` passes those checks, and `robust` bounds its damage.
     */
    /** Simulated departures: the client leaves the run with its data (the `leave` message) when this mission (0-based) arrives. */
    leave: z.array(z.strictObject({ client: z.number().int().min(0), mission: z.number().int().min(0) })).default([]),
    byzantine: z.array(z.strictObject({
      client: z.number().int().min(0),
      attack: z.enum(['scale', 'inflate-counts', 'unassigned-classes']),
      factor: z.number().finite().default(100),
    })).default([]),
  }).default({ crash: [], leave: [], byzantine: [] }),
  /**
   * A robust merge, for runs where an update's vectors cannot be trusted: each class mean of an
   * update is clipped to at most `maxNorm` (L2), and to at most `maxDeviation` from the class's
   * global prototype when the class is known. The clipped mean is what is merged (and unlearned).
   */
  robust: z.strictObject({
    maxNorm: z.number().positive().optional(),
    maxDeviation: z.number().positive().optional(),
  }).optional(),
});

export type Scenario = z.infer<typeof scenarioSchema>;

/** Validates a parsed scenario object; errors name the offending key. */
export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const at = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `  ${at ? `${at}.` : ''}${k}: unknown key`).join('\n');
      }
      return `  ${at || '(top level)'}: ${issue.message}`;
    });
    throw new ScenarioError(`${source} is invalid:\n${lines.join('\n')}`);
  }
  const s = result.data;
  if (s.faults.dropouts && s.faults.dropouts.probability > 0 && s.timeouts.deadlineMs === undefined) {
    throw new ScenarioError(`${source} is invalid:\n  faults.dropouts: a mission with dropouts can only end at a deadline; set timeouts.deadlineMs`);
  }
  const population = s.clients.mode === 'population';
  if (!population && s.clients.count > 1024) {
    throw new ScenarioError(`${source} is invalid:\n  clients.count: ${s.clients.count} clients need clients.mode: population (the other modes take at most 1,024)`);
  }
  if (!population && (s.clients.perMission !== undefined || s.clients.workers !== undefined)) {
    throw new ScenarioError(`${source} is invalid:\n  clients.${s.clients.perMission !== undefined ? 'perMission' : 'workers'}: only for clients.mode: population`);
  }
  if (population && s.clients.perMission !== undefined && s.clients.perMission > s.clients.count) {
    throw new ScenarioError(`${source} is invalid:\n  clients.perMission: ${s.clients.perMission} is more than the ${s.clients.count} clients`);
  }
  const strategy = strategyNamed(s.strategy);
  if (population && (s.missions.schedule !== 'fed-recon' || s.missions.merge !== 'sync' || !strategy.population)) {
    throw new ScenarioError(`${source} is invalid:\n  clients.mode: population runs the fed-recon schedule (drawn with replacement), sync merging and the protofed strategy`);
  }
  if (strategy.syncOnly && s.missions.merge !== 'sync') {
    throw new ScenarioError(`${source} is invalid:\n  strategy: ${s.strategy} ${strategy.syncOnly}, so it needs missions.merge: sync`);
  }
  if (s.robust && strategy.merge !== 'sum') {
    throw new ScenarioError(`${source} is invalid:\n  robust: the robust merge clips class means that are added up; strategy ${s.strategy} averages rounds instead`);
  }
  if (s.robust && population) {
    throw new ScenarioError(`${source} is invalid:\n  robust: population mode's clients are simulated honestly; a robust merge is for client processes (process, virtual or remote)`);
  }
  for (const fault of s.faults.leave) {
    if (fault.client >= s.clients.count) throw new ScenarioError(`${source} is invalid:\n  faults.leave: client ${fault.client} does not exist (clients.count is ${s.clients.count})`);
  }
  if (s.faults.leave.length > 0 && strategy.merge !== 'sum') {
    throw new ScenarioError(`${source} is invalid:\n  faults.leave: a client leaves with its data by exact unlearning, which needs added-up statistics; strategy ${s.strategy} averages rounds`);
  }
  if (s.faults.leave.length > 0 && (s.clients.mode === 'remote' || s.clients.mode === 'population')) {
    throw new ScenarioError(`${source} is invalid:\n  faults.leave: simulated departures need clients the coordinator starts (clients.mode process or virtual)`);
  }
  for (const fault of s.faults.byzantine) {
    if (fault.client >= s.clients.count) throw new ScenarioError(`${source} is invalid:\n  faults.byzantine: client ${fault.client} does not exist (clients.count is ${s.clients.count})`);
  }
  if (s.faults.byzantine.length > 0 && (s.clients.mode === 'remote' || s.clients.mode === 'population')) {
    throw new ScenarioError(`${source} is invalid:\n  faults.byzantine: simulated adversaries need clients the coordinator starts (clients.mode process or virtual)`);
  }
  if (s.faults.crash.length > 0 && s.clients.mode !== 'process') {
    throw new ScenarioError(`${source} is invalid:\n  faults.crash: crashing a client process needs clients.mode: process`);
  }
  for (const fault of s.faults.crash) {
    if (fault.client >= s.clients.count) {
      throw new ScenarioError(`${source} is invalid:\n  faults.crash: client ${fault.client} does not exist (clients.count is ${s.clients.count})`);
    }
  }
  return s;
}

/** Reads and validates a YAML (or JSON) scenario file. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ScenarioError(`cannot read scenario file ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message : String(err);
    throw new ScenarioError(`${path} is not valid YAML: ${detail}`);
  }
  return resolvePaths(parseScenario(raw, path), dirname(resolve(path)));
}

/** Makes the scenario's file paths absolute, relative to the folder of the scenario file. */
function resolvePaths(s: Scenario, base: string): Scenario {
  const at = (p: string): string =>
    p.startsWith('~/') ? join(homedir(), p.slice(2)) : isAbsolute(p) || /^[a-z]+:\/\//.test(p) ? p : resolve(base, p);
  const dataset = s.dataset.dir && s.dataset.dir !== 'embedded' ? { ...s.dataset, dir: at(s.dataset.dir) } : s.dataset;
  const cache = s.cache.dir ? { ...s.cache, dir: at(s.cache.dir) } : s.cache;
  const backbone = s.backbone.name === 'conv4' ? { ...s.backbone, weights: at(s.backbone.weights) }
    : s.backbone.name === 'tfjs-model' ? { ...s.backbone, url: at(s.backbone.url) }
    : s.backbone;
  return { ...s, dataset, backbone, cache };
}

/**
 * Checks the parts of a scenario that depend on the dataset: class ids exist, base and field
 * classes are disjoint, and each mission can be filled at all. Errors name the key.
 * Returns the base classes (the scenario's, else the dataset's own split) and the field classes.
 */
export function checkScenarioAgainstDataset(
  s: Scenario,
  dataset: { classCount: number; trainPerClass: Map<number, number>; baseClasses?: readonly number[] | undefined; classGroups?: readonly string[] | undefined },
  source = 'scenario',
): { base: number[]; field: number[] } {
  const { classCount, trainPerClass } = dataset;
  const fail = (key: string, why: string): never => {
    throw new ScenarioError(`${source} is invalid:\n  ${key}: ${why}`);
  };
  const checkIds = (key: string, ids: readonly number[]): void => {
    const bad = ids.filter((c) => c >= classCount);
    if (bad.length > 0) fail(key, `class ${bad.slice(0, 5).join(', ')} does not exist (the dataset has classes 0..${classCount - 1})`);
    if (new Set(ids).size !== ids.length) fail(key, 'a class is listed twice');
  };
  const base = [...(s.dataset.baseClasses ?? dataset.baseClasses ?? [])];
  checkIds('dataset.baseClasses', base);
  const baseSet = new Set(base);
  let field = s.missions.fieldClasses ?? Array.from({ length: classCount }, (_, i) => i).filter((c) => !baseSet.has(c));
  if (s.missions.fieldGroups) {
    const groups = dataset.classGroups;
    if (!groups) fail('missions.fieldGroups', 'this dataset has no class groups');
    const wanted = new Set(s.missions.fieldGroups);
    const unknown = s.missions.fieldGroups.filter((g) => !groups!.includes(g));
    if (unknown.length > 0) fail('missions.fieldGroups', `no class is in group ${unknown.map((g) => `"${g}"`).join(', ')}`);
    field = field.filter((c) => wanted.has(groups![c]!));
  }
  checkIds('missions.fieldClasses', field);
  const overlap = field.filter((c) => baseSet.has(c));
  if (overlap.length > 0) fail('missions.fieldClasses', `class ${overlap.slice(0, 5).join(', ')} is also a base class`);
  if (s.missions.classesPerClient > field.length) {
    fail('missions.classesPerClient', `${s.missions.classesPerClient} classes per client per mission, but there are only ${field.length} field classes`);
  }
  const fillable = field.filter((c) => (trainPerClass.get(c) ?? 0) >= s.missions.shotsPerClass).length;
  if (fillable < s.missions.classesPerClient) {
    fail('missions.shotsPerClass', `${s.missions.shotsPerClass} examples per class, but only ${fillable} field classes have that many training images`);
  }
  return { base, field };
}
