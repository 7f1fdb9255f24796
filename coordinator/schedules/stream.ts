import { SeededRng } from '../../shared/learning/rng.js';
import { allClients, type ClassAssignment, type MissionSchedule } from './schedule.js';
import { TrainPool } from './train-pool.js';

export interface StreamOptions {
  /** Examples each taking-part client draws per tick, over all classes together. */
  shotsPerClass: number;
  /** Classes a client's position advances per tick (> 0). */
  streamSpeed: number;
  /** Standard deviation, in classes, of the Gaussian window around a client's position (> 0). */
  streamWidth: number;
}

/**
 * Task-free continual learning (Aljundi et al. 2019): no task boundaries, only a data
 * distribution that drifts. Each mission is one short tick of a stream. The field classes lie on
 * a ring in one order (seeded, or the given order with `fixedClassOrder`). Client c's position on
 * it is offset_c + streamSpeed · tick: the offsets are stratified over the ring (client c starts
 * somewhere in the c-th of n equal arcs, seeded), so the clients are at different places in the
 * stream. Positions advance with the global tick, whether or not a client takes part in it.
 *
 * In each tick every taking-part client draws `shotsPerClass` examples in total; each example's
 * class is drawn with Gaussian weights exp(−d² / 2·streamWidth²) over the classes within
 * max(3·streamWidth, 1) of the client's position (d: distance along the ring), among the classes
 * that still have images (renormalised). Images come without replacement from one pool shared by
 * all clients and ticks; the draws are grouped by class (a class may come with one example).
 * The run ends (undefined) as soon as some taking-part client's window holds too few images:
 * the stream never jumps ahead to far classes. All or nothing, like the other schedules.
 *
 * A ring rather than a line: on a line, the client that starts nearest the end would end the run
 * after a few ticks; on the ring every client sweeps its own arc until it runs into classes the
 * client ahead of it has used up.
 *
 * @example
 * const s = new StreamSchedule(labels, fieldClasses, 4, { shotsPerClass: 4, streamSpeed: 0.25, streamWidth: 1.5 }, 7, false);
 * s.next(); // per client, e.g. [{ classId: 12, indices: [a, b] }, { classId: 40, indices: [c] }, { classId: 41, indices: [d] }]
 */
export class StreamSchedule implements MissionSchedule {
  private readonly pool: TrainPool;
  private readonly rng: SeededRng;
  private readonly order: number[];
  /** Per client, where it starts on the ring (in class slots, in [0, classOrder.length)). */
  readonly offsets: readonly number[];
  /** How far from its position a client may draw a class, in class slots. */
  readonly radius: number;
  private missionIndex = 0;

  constructor(
    trainLabels: ArrayLike<number>,
    fieldClasses: readonly number[],
    readonly clientCount: number,
    readonly options: StreamOptions,
    seed: number,
    fixedClassOrder: boolean,
  ) {
    const { shotsPerClass, streamSpeed, streamWidth } = options;
    const check = (ok: boolean, key: string, want: string, got: unknown): void => {
      if (!ok) throw new RangeError(`stream schedule: ${key} must be ${want}, got ${String(got)}`);
    };
    check(Number.isFinite(streamSpeed) && streamSpeed > 0, 'streamSpeed', 'a positive number', streamSpeed);
    check(Number.isFinite(streamWidth) && streamWidth > 0, 'streamWidth', 'a positive number', streamWidth);
    check(Number.isInteger(shotsPerClass) && shotsPerClass > 0, 'shotsPerClass', 'a positive integer', shotsPerClass);
    check(Number.isInteger(clientCount) && clientCount > 0, 'clientCount', 'a positive integer', clientCount);
    check(fieldClasses.length > 0, 'fieldClasses', 'non-empty', '[]');
    check(new Set(fieldClasses).size === fieldClasses.length, 'fieldClasses', 'distinct', fieldClasses.join(','));

    const rng = new SeededRng(seed).fork('stream-schedule');
    this.pool = new TrainPool(trainLabels, fieldClasses, rng.fork('pool'));
    this.order = fixedClassOrder ? [...fieldClasses] : rng.fork('order').shuffle([...fieldClasses]);
    const offsets = rng.fork('offsets');
    const arc = this.order.length / clientCount;
    this.offsets = Array.from({ length: clientCount }, (_, c) => (c + offsets.next()) * arc);
    this.radius = Math.max(3 * streamWidth, 1);
    this.rng = rng.fork('draws');
  }

  get missions(): number {
    return this.missionIndex;
  }

  /** The class order of the ring. */
  get classOrder(): readonly number[] {
    return this.order;
  }

  /** A client's position at a tick (the next one by default), unwrapped: slot = position mod classOrder.length. */
  positionOf(client: number, tick = this.missionIndex): number {
    return this.offsets[client]! + this.options.streamSpeed * tick;
  }

  next(participants: readonly number[] = allClients(this.clientCount)): ClassAssignment[][] | undefined {
    const tick = this.missionIndex;
    const draw = this.pool.draw();
    const plan: ClassAssignment[][] = [];
    for (const client of participants) {
      if (!Number.isInteger(client) || client < 0 || client >= this.clientCount) {
        throw new RangeError(`stream schedule: no client ${client} (there are ${this.clientCount})`);
      }
      const window = this.window(this.positionOf(client, tick));
      // One generator per tick and client: a client's draws do not depend on who else takes part.
      const rng = this.rng.fork(`${tick}/${client}`);
      const byClass = new Map<number, number[]>();
      for (let k = 0; k < this.options.shotsPerClass; k++) {
        const open = window.filter((w) => draw.has(w.classId, 1));
        if (open.length === 0) return undefined;
        const classId = this.pick(open, rng);
        const [index] = draw.take(classId, 1).indices;
        let list = byClass.get(classId);
        if (!list) byClass.set(classId, (list = []));
        list.push(index!);
      }
      plan.push([...byClass].sort(([a], [b]) => a - b).map(([classId, indices]) => ({ classId, indices })));
    }
    draw.commit();
    this.missionIndex++;
    return plan;
  }

  /** The classes within `radius` of a position on the ring, with their squared distance. */
  private window(position: number): { classId: number; d2: number }[] {
    const n = this.order.length;
    const nearest = new Map<number, number>();
    for (let j = Math.ceil(position - this.radius); j <= Math.floor(position + this.radius); j++) {
      const slot = ((j % n) + n) % n;
      const d2 = (j - position) ** 2;
      // A ring shorter than the window meets a slot more than once: keep the nearest.
      const seen = nearest.get(slot);
      if (seen === undefined || d2 < seen) nearest.set(slot, d2);
    }
    return [...nearest].sort(([a], [b]) => a - b).map(([slot, d2]) => ({ classId: this.order[slot]!, d2 }));
  }

  /** One class by Gaussian weight; relative to the nearest open class, so narrow windows never underflow to all zeros. */
  private pick(open: { classId: number; d2: number }[], rng: SeededRng): number {
    const two = 2 * this.options.streamWidth ** 2;
    const nearest = Math.min(...open.map((w) => w.d2));
    const weights = open.map((w) => Math.exp(-(w.d2 - nearest) / two));
    let r = rng.next() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < open.length; i++) {
      r -= weights[i]!;
      if (r < 0) return open[i]!.classId;
    }
    return open[open.length - 1]!.classId;
  }
}
