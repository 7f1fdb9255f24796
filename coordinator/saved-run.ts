import { randomBytes } from 'node:crypto';
import type { VectorCodec } from '../shared/protocol/codecs/vector-codec.js';
import type { FederationState, FederationStateOptions } from './federation/federation-state.js';
import { NoStore } from './federation/no-store.js';
import { RecordLog } from './federation/record-log.js';
import { RunJournal } from './federation/run-journal.js';
import { ResultsWriter, type SavedRunConfig } from './results-writer.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { canonicalJson } from '../shared/scenario/canonical-json.js';

/**
 * The results folder of a run that starts or resumes, checked before anything else happens (a
 * run that cannot start leaves an existing folder untouched), and the run's id: a new one, or
 * the saved run's when resuming, whose scenario must be this one.
 *
 * @example
 * const { out, saved, runId } = openRunFolder(scenario, { outDir: 'results/x', resume: true });
 */
export function openRunFolder(
  scenario: unknown,
  options: { outDir?: string | undefined; resume?: boolean | undefined; force?: boolean | undefined },
): { out: ResultsWriter | undefined; saved: SavedRunConfig | undefined; runId: string } {
  const out = options.outDir ? ResultsWriter.open(options.outDir, { resume: options.resume, force: options.force }) : undefined;
  if (options.resume && !out) throw new Error('resuming a run needs its results folder');
  const saved = options.resume ? ResultsWriter.readConfig(out!.dir) : undefined;
  // Read with today's defaults, so that a run saved before a new scenario key resumes too.
  if (saved && canonicalJson(parseScenario(saved.scenario, `${out!.dir}/config.json`)) !== canonicalJson(scenario)) {
    throw new Error(`cannot resume ${out!.dir} with another scenario than the one it was started with (its config.json)`);
  }
  return { out, saved, runId: saved?.runId ?? `run-${randomBytes(6).toString('hex')}` };
}

/**
 * The run's journal and the federation state it holds: in the results folder's `state/` (empty
 * for a new run), or kept nowhere for a run without a folder. Says what it dropped and restored.
 */
export async function openRunJournal<M, P = unknown>(
  out: ResultsWriter | undefined, log: (line: string) => void,
  dim: number, options: FederationStateOptions, codec: VectorCodec, deltaDownlink: VectorCodec | undefined,
): Promise<{ journal: RunJournal<M, P>; state: FederationState; resumedAfterMission: number | null }> {
  const store = out ? await RecordLog.open(out.stateDir) : new NoStore();
  if (store.recovered.droppedTailBytes > 0) {
    log(`dropped the last ${store.recovered.droppedTailBytes} bytes of the state log: a write that the stop cut short (none of it was acknowledged)`);
  }
  const opened = performance.now();
  const { journal, state } = RunJournal.open<M, P>(store, dim, options, codec, deltaDownlink);
  const resumedAfterMission = journal.missions.length > 0 || state.version > 0 ? journal.missions.length : null;
  if (resumedAfterMission !== null) {
    log(`state restored in ${((performance.now() - opened) / 1000).toFixed(2)} s: ${journal.missions.length} missions, table version ${state.version}`);
  }
  return { journal, state, resumedAfterMission };
}
