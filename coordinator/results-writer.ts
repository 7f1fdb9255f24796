import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MissionResult } from './federation/mission-runner.js';

/** The files of a results folder that a run writes (and that --force replaces). */
const RUN_FILES = ['config.json', 'metrics.jsonl', 'summary.json', 'state'];
const ADMIN_FILE = 'admin.json';

/** How the operator reaches a running coordinator. */
export interface AdminAccess {
  url: string;
  key: string;
  pid: number;
}

/**
 * A results folder: `config.json` (the resolved scenario, the run's id and where everything came
 * from), `metrics.jsonl` (one record per mission and client, plus one global record per mission),
 * `summary.json`, and `state/` (the durable journal a run resumes from).
 *
 * A folder that already holds a run is never written over silently: it is resumed, or replaced
 * only when asked to (`force`).
 *
 * @example
 * const out = ResultsWriter.open('results/run1', {});
 * out.writeConfig({ scenario, runId, dataset: {...} });
 * out.appendMission(result);
 */
export class ResultsWriter {
  private constructor(readonly dir: string) {}

  /**
   * Opens a results folder for a new run (it must not hold one, unless `force`), or for resuming
   * the run it holds (`resume`). Checked before anything else happens, so a run that fails to
   * start leaves an existing folder as it was.
   */
  static open(dir: string, how: { resume?: boolean | undefined; force?: boolean | undefined }): ResultsWriter {
    const holdsRun = RUN_FILES.some((f) => existsSync(join(dir, f)));
    if (how.resume) {
      if (!existsSync(join(dir, 'state')) || !existsSync(join(dir, 'config.json'))) {
        throw new Error(`nothing to resume in ${dir}: it holds no saved run (config.json and state/)`);
      }
      return new ResultsWriter(dir);
    }
    if (holdsRun) {
      if (!how.force) throw new Error(`${dir} already holds a run: resume it with --resume ${dir}, or give --force to replace it`);
      for (const f of RUN_FILES) rmSync(join(dir, f), { recursive: true, force: true });
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.jsonl'), '');
    return new ResultsWriter(dir);
  }

  /** Where a running coordinator can be reached by its operator (`protofed forget`): admin.json, readable by this user only. */
  writeAdminAccess(access: AdminAccess): void {
    writeFileSync(join(this.dir, ADMIN_FILE), `${JSON.stringify(access)}\n`, { mode: 0o600 });
  }

  removeAdminAccess(): void {
    rmSync(join(this.dir, ADMIN_FILE), { force: true });
  }

  /** The running coordinator of a results folder, if one says it is running. */
  static readAdminAccess(dir: string): AdminAccess | undefined {
    if (!existsSync(join(dir, ADMIN_FILE))) return undefined;
    return JSON.parse(readFileSync(join(dir, ADMIN_FILE), 'utf8')) as AdminAccess;
  }

  /** The saved run's config.json (for resuming it). */
  static readConfig(dir: string): SavedRunConfig {
    let config: SavedRunConfig;
    try {
      config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as SavedRunConfig;
    } catch (err) {
      throw new Error(`cannot read the saved run's config in ${dir}: ${(err as Error).message}`);
    }
    if (typeof config.runId !== 'string' || typeof config.scenario !== 'object') throw new Error(`${join(dir, 'config.json')} is not a protofed run's config (no runId or scenario)`);
    return config;
  }

  /** Where the run's durable state lives. */
  get stateDir(): string {
    return join(this.dir, 'state');
  }

  writeConfig(config: object): void {
    writeFileSync(join(this.dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }

  appendMission(r: MissionResult): void {
    this.appendRecords(missionLines(r));
  }

  /** Writes metrics.jsonl anew from these missions (a resumed run's journal is the record of truth). */
  rewriteMissions(results: readonly MissionResult[]): void {
    this.rewriteRecords(results.flatMap(missionLines));
  }

  /** Writes metrics.jsonl anew with these records. */
  rewriteRecords(lines: readonly object[]): void {
    writeFileSync(join(this.dir, 'metrics.jsonl'), lines.length === 0 ? '' : `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  }

  /** Appends records to metrics.jsonl, one JSON object per line. */
  appendRecords(lines: object[]): void {
    appendFileSync(join(this.dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }

  writeSummary(summary: object): void {
    writeFileSync(join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
}

export interface SavedRunConfig {
  runId: string;
  scenario: unknown;
  source?: string;
}

function missionLines(r: MissionResult): object[] {
  return [
    { record: 'global', mission: r.mission, classesKnown: r.classesKnown, newClasses: r.newClasses, globalAccuracy: r.globalAccuracy,
      meanClientAccuracyBefore: r.meanClientAccuracyBefore, meanClientAccuracyAfter: r.meanClientAccuracyAfter,
      tableVersion: r.tableVersion, bytes: r.bytes, late: r.late, wallMs: r.wallMs, simulatedTransferSeconds: r.simulatedTransferSeconds },
    ...r.clients.map((c) => ({ record: 'client', mission: r.mission, clientId: c.clientId, accuracyBefore: c.accuracyBefore,
      accuracyAfter: c.accuracyAfter, bytes: c.bytes })),
  ];
}
