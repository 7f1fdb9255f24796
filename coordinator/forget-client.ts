import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableChecksum } from '../shared/learning/table-checksum.js';
import { parseCodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { trustingFetch } from '../shared/protocol/trusting-fetch.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { strategyNamed } from '../shared/strategies/registry.js';
import { ResultsWriter } from './results-writer.js';
import { openRunJournal } from './saved-run.js';
import { ADMIN_FORGET_PATH } from './transport/admin-endpoint.js';

export interface ForgetResult {
  clientId: string;
  /** Where it happened: in the running coordinator, or in the saved state of a stopped run. */
  where: 'running coordinator' | 'saved run';
  tableVersion: number;
  tableChecksum: string;
  alreadyGone: boolean;
}

/**
 * Exact unlearning of one client of a run, by its results folder: through the running
 * coordinator when one serves that folder (admin.json), otherwise in the saved state, which a
 * later `--resume` goes on from. The summary records it.
 *
 * @example
 * await forgetClient('results/glyphs-…', 'c3'); // { tableChecksum: '…', where: 'saved run', … }
 */
export async function forgetClient(dir: string, clientId: string, options: { ca?: string | undefined; log?: (line: string) => void } = {}): Promise<ForgetResult> {
  const access = ResultsWriter.readAdminAccess(dir);
  if (access && processAlive(access.pid)) {
    let response: Response;
    try {
      response = await trustingFetch(options.ca)(`${access.url}${ADMIN_FORGET_PATH}?client=${encodeURIComponent(clientId)}`, {
        method: 'POST', headers: { authorization: `Bearer ${access.key}` },
      } as RequestInit);
    } catch (err) {
      throw new Error(`the coordinator of ${dir} (pid ${access.pid}) does not answer at ${access.url}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    const body = await response.json() as { error?: string; tableVersion: number; tableChecksum: string; alreadyGone: boolean };
    if (!response.ok) throw new Error(`the coordinator refused: ${body.error ?? response.status}`);
    // The running coordinator writes its summary (with leftClients) when the run ends.
    return { clientId, where: 'running coordinator', tableVersion: body.tableVersion, tableChecksum: body.tableChecksum, alreadyGone: body.alreadyGone };
  }
  return forgetInSavedRun(dir, clientId, options.log ?? (() => {}));
}

async function forgetInSavedRun(dir: string, clientId: string, log: (line: string) => void): Promise<ForgetResult> {
  const config = ResultsWriter.readConfig(dir) as { scenario: unknown; backbone?: { dim?: number } };
  const scenario = parseScenario(config.scenario, join(dir, 'config.json'));
  const strategy = strategyNamed(scenario.strategy);
  if (strategy.merge !== 'sum' || scenario.clients.mode === 'population') {
    throw new Error(`${dir}: exact unlearning needs each client's statistics, added up; this run (strategy ${scenario.strategy}, clients.mode ${scenario.clients.mode}) keeps none`);
  }
  const clientIds = Array.from({ length: scenario.clients.count }, (_, i) => `c${i}`);
  if (!clientIds.includes(clientId)) throw new Error(`there is no client "${clientId}" in the run in ${dir} (its clients are c0..c${clientIds.length - 1})`);
  const uplink = parseCodecSpec(scenario.codec.uplink);
  if (uplink.pq) throw new Error(`${dir}: its updates are pq codes, which need the run's codebook: forget the client while the run runs, or resume the run and forget it then`);
  const dim = config.backbone?.dim;
  if (typeof dim !== 'number') throw new Error(`${join(dir, 'config.json')} does not say the embedding dim (backbone.dim)`);
  const out = ResultsWriter.open(dir, { resume: true });
  const { journal, state } = await openRunJournal(out, log, strategy.tableDim(dim), { merge: 'sum', keepContributions: true, clip: scenario.robust },
    uplink.codec, uplink.delta ? parseCodecSpec(scenario.codec.downlink).codec : undefined);
  try {
    const alreadyGone = state.hasLeft(clientId);
    if (!alreadyGone) state.removeClient(clientId);
    await journal.flush();
    await journal.snapshot();
    const checksum = tableChecksum(state.global);
    recordInSummary(dir, clientId, checksum);
    return { clientId, where: 'saved run', tableVersion: state.version, tableChecksum: checksum, alreadyGone };
  } finally {
    await journal.close();
  }
}

/** summary.json (when the run wrote one): the new table's checksum, and who was forgotten. Its accuracies are those measured before. */
function recordInSummary(dir: string, clientId: string, checksum: string): void {
  const file = join(dir, 'summary.json');
  if (!existsSync(file)) return;
  const summary = JSON.parse(readFileSync(file, 'utf8')) as { tableChecksum?: string; forgotten?: { clientId: string; tableChecksum: string }[] };
  summary.forgotten = [...(summary.forgotten ?? []).filter((f) => f.clientId !== clientId), { clientId, tableChecksum: checksum }];
  summary.tableChecksum = checksum;
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
