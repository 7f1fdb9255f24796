/**
 * How long a job has run and how long it has to go. The pace is taken between the first step this
 * process saw and the latest one, so set-up time (and, for a resumed job, the steps done before)
 * does not skew it.
 *
 * @example
 * const clock = new JobClock(60);
 * clock.step(1); clock.step(2); // after missions 1 and 2 of 60
 * clock.describe(); // "3.1 s, ~2 min 3 s to go"
 */
export class JobClock {
  private readonly started = performance.now();
  private first: { at: number; done: number } | undefined;
  private latest: { at: number; done: number } | undefined;

  constructor(private readonly total: number) {}

  /** `done` steps of the total are finished now. */
  step(done: number): void {
    const now = { at: performance.now(), done };
    this.first ??= now;
    this.latest = now;
  }

  /** Seconds since the job started in this process. */
  get elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Seconds to go at the pace between the first and the latest step; null until there is a pace, 0 at the end. */
  get etaSeconds(): number | null {
    if (!this.first || !this.latest) return null;
    if (this.latest.done >= this.total) return 0;
    const steps = this.latest.done - this.first.done;
    if (steps <= 0) return null;
    return ((this.latest.at - this.first.at) / 1000 / steps) * (this.total - this.latest.done);
  }

  describe(): string {
    const eta = this.etaSeconds;
    if (eta === 0) return `${formatSeconds(this.elapsedSeconds)}, done`;
    return `${formatSeconds(this.elapsedSeconds)}${eta === null ? '' : `, ~${formatSeconds(eta)} to go`}`;
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** One JSON object per line on stdout, for `--json`. */
export function emitJson(event: string, fields: object): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/**
 * Says how far bulk work has come: a JSON event per step with `--json`, else a line per step for
 * work of more than one step.
 */
export function bulkProgress(say: (line: string) => void, json: boolean): (p: { phase: string; what: string; done: number; total: number }) => void {
  const clocks = new Map<string, JobClock>();
  return (p) => {
    let clock = clocks.get(p.what);
    const first = !clock;
    if (!clock) clocks.set(p.what, (clock = new JobClock(p.total)));
    clock.step(p.done);
    if (json) emitJson('progress', { ...p, elapsedSeconds: clock.elapsedSeconds, etaSeconds: clock.etaSeconds });
    // Work done in its first step is not worth a line.
    else if (!(first && p.done === p.total)) {
      say(`${p.phase} ${p.done.toLocaleString('en')}/${p.total.toLocaleString('en')} ${p.what} (${clock.describe()})`);
    }
  };
}
