import { SeededRng } from '../shared/learning/rng.js';
import type { StragglerConfig } from '../shared/scenario/client-config.js';

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

/**
 * Which client drops out of which mission (it ignores the mission: its examples are never
 * learned, as with a device gone offline), drawn like stragglerDelay.
 *
 * @example
 * const drops = dropsMission(0.1, 7, 'c3');
 * drops(4); // true for about one mission in ten
 */
export function dropsMission(probability: number | undefined, seed: number, clientId: string): (mission: number) => boolean {
  if (!probability || probability <= 0) return () => false;
  return (mission) => new SeededRng(`${seed}/dropout/${clientId}/${mission}`).next() < probability;
}
