import { SeededRng } from './rng.js';

export interface StragglerConfig {
  probability: number;
  delayMs: number;
}

/**
 * Which client straggles in which mission, drawn from the run's seed, the client's id and the
 * mission, so that every process draws the same, whatever order it asks in.
 *
 * @example
 * const hold = stragglerDelay({ probability: 0.2, delayMs: 3000 }, 7, 'c3');
 * hold(4); // 0, or 3000 when c3 straggles in mission 4
 */
export function stragglerDelay(config: StragglerConfig | undefined, seed: number, clientId: string): (mission: number) => number {
  if (!config || config.probability <= 0) return () => 0;
  return (mission) => (new SeededRng(`${seed}/straggler/${clientId}/${mission}`).next() < config.probability ? config.delayMs : 0);
}
