import type { DatasetSpec } from '../datasets/dataset-registry.js';
import type { BackboneSpec } from '../embedding/backbone-registry.js';
import type { BackendChoice } from '../tensor/tensor-backend.js';

/** Simulated stragglers: each client holds back its update by `delayMs` with this probability per mission. */
export interface StragglerConfig {
  probability: number;
  delayMs: number;
}

/** A simulated adversarial client's attack (scenario faults.byzantine). */
export interface ByzantineConfig {
  attack: 'scale' | 'inflate-counts' | 'unassigned-classes';
  factor: number;
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
  /** Simulated departure: leave the run with its data when this mission arrives. */
  leaveAtMission?: number | undefined;
  /** Simulated adversary: how this client poisons its updates. */
  byzantine?: ByzantineConfig | undefined;
  seed?: number | undefined;
}
