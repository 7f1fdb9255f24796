import { SeededRng } from '../shared/learning/rng.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';
import type { ByzantineConfig, StragglerConfig } from '../shared/scenario/client-config.js';

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

/** Counts an adversary claims: far more examples than any client has. */
const HUGE_COUNT = 2 ** 40;

/**
 * How a simulated adversarial client poisons the statistics of its update, before they are
 * encoded (`known`: the classes of the mission); undefined for an honest client.
 *
 * @example
 * const poison = poisonUpdate({ attack: 'scale', factor: 100 });
 * poison!(delta); // every mean × 100, the counts as they were
 */
export function poisonUpdate(config: ByzantineConfig | undefined): ((stats: PrototypeTable, known: readonly number[]) => PrototypeTable) | undefined {
  if (!config) return undefined;
  return (stats, known) => {
    const out = new PrototypeTable(stats.dim);
    for (const id of stats.classIds()) {
      const s = stats.get(id)!;
      const mean = stats.prototype(id)!;
      if (config.attack === 'scale') out.setMean(id, s.count, mean.map((v) => v * config.factor));
      else if (config.attack === 'inflate-counts') out.setMean(id, HUGE_COUNT, mean);
      else out.setMean(id, s.count, mean);
    }
    if (config.attack === 'unassigned-classes') {
      const fake = new Float64Array(stats.dim).fill(config.factor);
      const others = [...known.filter((c) => !stats.has(c)), 1_000_000, 1_000_001, 1_000_002, 1_000_003, 1_000_004];
      for (const id of others.slice(0, 5)) out.setMean(id, HUGE_COUNT, fake);
    }
    return out;
  };
}
