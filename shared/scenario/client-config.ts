import type { DatasetSpec } from '../datasets/dataset-registry.js';
import type { BackboneSpec } from '../embedding/backbone-registry.js';
import type { BackendChoice } from '../tensor/tensor-backend.js';

/** Simulated stragglers: each client holds back its update by `delayMs` with this probability per mission. */
export interface StragglerConfig {
  probability: number;
  delayMs: number;
}

/**
 * What the coordinator hands each client it starts (process or virtual): where its data is, which
 * backbone to build, and the simulated faults it should act out.
 */
export interface ProcessClientConfig {
  dataset: DatasetSpec;
  backbone: BackboneSpec;
  backend: BackendChoice;
  testPerClass?: number | undefined;
  /** Embedding cache folder; no disk cache when absent. */
  cacheDir?: string | undefined;
  /** Exit abruptly when this mission arrives (fault injection). */
  crashAtMission?: number | undefined;
  /** Simulated stragglers, drawn with the run's seed. */
  stragglers?: StragglerConfig | undefined;
  dropoutProbability?: number | undefined;
  seed?: number | undefined;
}
