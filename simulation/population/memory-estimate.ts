import { totalmem } from 'node:os';

/** What a population run's memory grows with. */
export interface PopulationShape {
  population: number;
  perMission: number;
  missions: number;
  workers: number;
  /** Train images in the shared embedding bank, and the embedding dim. */
  trainImages: number;
  dim: number;
  /** Field classes: the most a table holds. */
  classes: number;
}

/**
 * Bytes of the process before any client: Node, the tensor backend, the dataset and the threads
 * that embed the bank (population-10k, glyphs and conv4, peaks at 1.05 GiB with 10,000 clients).
 */
const BASE_BYTES = 900e6;
const PER_WORKER_BYTES = 70e6;
/** Per client, whether it takes part or not: bytes counters, versions sent and held, seqs, codebook flags. */
const PER_CLIENT_BYTES = 32;
/**
 * Per client that has taken part: its seq and delivery entries (string-keyed maps) among others.
 * Measured: population-1m (about 490,000 participants) peaks 0.71 GiB above population-10k.
 */
const PER_PARTICIPANT_BYTES = 2_000;
/** Per mission: its record, kept for the results and the summary. */
const PER_MISSION_BYTES = 2_000;

/**
 * An upper estimate of a population run's peak memory. Clients that hold an older table keep
 * that version alive in their shard (its sums and means), so versions add up to the missions run.
 *
 * @example
 * estimatePopulationBytes({ population: 1e6, perMission: 1e4, missions: 50, workers: 2, trainImages: 40_000, dim: 64, classes: 750 });
 */
export function estimatePopulationBytes(s: PopulationShape): number {
  const participants = Math.min(s.population, s.perMission * s.missions);
  const tableBytes = s.classes * s.dim * 8;
  const versions = Math.min(s.missions, participants);
  return BASE_BYTES + s.workers * PER_WORKER_BYTES
    + s.trainImages * (s.dim * 4 + 4)
    + s.population * PER_CLIENT_BYTES
    + participants * PER_PARTICIPANT_BYTES
    + s.missions * PER_MISSION_BYTES
    + versions * tableBytes * 2 * s.workers;
}

/** Refuses a population run whose estimated peak exceeds the machine's memory, naming what drives it. */
export function checkPopulationFits(s: PopulationShape, machineBytes = totalmem()): number {
  const need = estimatePopulationBytes(s);
  if (need > machineBytes) {
    const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;
    throw new Error(`population mode: this scenario needs about ${gib(need)} of memory, but the machine has ${gib(machineBytes)} ` +
      `(${s.population.toLocaleString('en')} clients, ${Math.min(s.population, s.perMission * s.missions).toLocaleString('en')} of them taking part, ` +
      `${s.missions.toLocaleString('en')} missions); lower clients.count, clients.perMission or missions.count`);
  }
  return need;
}
