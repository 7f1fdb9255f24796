import { describe, expect, it } from 'vitest';
import type { ClassAssignment } from '../coordinator/schedules/schedule.js';
import { StreamSchedule, type StreamOptions } from '../coordinator/schedules/stream.js';
import { loadScenarioFile, parseScenario } from '../shared/scenario/scenario-config.js';

/** `classes` classes × `perClass` images, labels interleaved. */
const labelsOf = (classes: number, perClass: number): number[] => Array.from({ length: classes * perClass }, (_, i) => i % classes);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const opts = (o: Partial<StreamOptions> = {}): StreamOptions => ({ shotsPerClass: 4, streamSpeed: 0.25, streamWidth: 1.5, ...o });

/** Every plan until the schedule ends (or `limit` ticks). */
function drain(s: StreamSchedule, limit = 10_000, participants?: number[]): ClassAssignment[][][] {
  const plans: ClassAssignment[][][] = [];
  while (plans.length < limit) {
    const plan = s.next(participants);
    if (!plan) break;
    plans.push(plan);
  }
  return plans;
}

/** Signed distance from ref to slot on a ring of n, in (−n/2, n/2]. */
function signed(slot: number, ref: number, n: number): number {
  const d = (((slot - ref) % n) + n) % n;
  return d > n / 2 ? d - n : d;
}

describe('the stream schedule (task-free)', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const labels = labelsOf(30, 40);
    const make = (seed: number) => new StreamSchedule(labels, range(30), 3, opts(), seed, false);
    const a = make(5);
    const b = make(5);
    expect(b.classOrder).toEqual(a.classOrder);
    expect(b.offsets).toEqual(a.offsets);
    expect(drain(b, 20)).toEqual(drain(a, 20));
    const c = make(6);
    expect(c.classOrder).not.toEqual(make(5).classOrder);
    expect(drain(c, 20)).not.toEqual(drain(make(5), 20));
  });

  it('hands every image out at most once, with its own label, shotsPerClass per client per tick, until it ends', () => {
    const labels = labelsOf(20, 12);
    const s = new StreamSchedule(labels, range(20), 3, opts({ streamSpeed: 0.5 }), 2, false);
    const plans = drain(s);
    expect(plans.length).toBeGreaterThan(5);
    expect(s.missions).toBe(plans.length);
    const used: number[] = [];
    for (const plan of plans) {
      expect(plan).toHaveLength(3);
      for (const client of plan) {
        // Grouped by class: distinct, sorted class ids, each with at least one image.
        const ids = client.map((a) => a.classId);
        expect(ids).toEqual([...new Set(ids)].sort((x, y) => x - y));
        expect(client.reduce((n, a) => n + a.indices.length, 0)).toBe(4);
        for (const a of client) {
          expect(a.indices.length).toBeGreaterThan(0);
          for (const i of a.indices) expect(labels[i]).toBe(a.classId);
          used.push(...a.indices);
        }
      }
    }
    expect(new Set(used).size).toBe(used.length);
    expect(s.next()).toBeUndefined();
    expect(s.missions).toBe(plans.length);
  });

  it('drifts smoothly: positions rise steadily, consecutive ticks share classes, distant ticks do not', () => {
    const n = 60;
    for (const seed of [1, 2, 3]) {
      const s = new StreamSchedule(labelsOf(n, 400), range(n), 4, opts({ shotsPerClass: 12 }), seed, false);
      const slot = new Map(s.classOrder.map((c, i) => [c, i]));
      const ticks = 40;
      const seen: Set<number>[][] = range(4).map(() => []);
      const meanPos: number[][] = range(4).map(() => []);
      for (let t = 0; t < ticks; t++) {
        s.next()!.forEach((client, c) => {
          const start = s.offsets[c]!;
          // Unwrapped against the client's start (the 40 ticks stay well inside half the ring).
          const pos = client.flatMap((a) => a.indices.map(() => start + signed(slot.get(a.classId)!, start, n)));
          meanPos[c]![t] = pos.reduce((x, y) => x + y, 0) / pos.length;
          seen[c]![t] = new Set(client.map((a) => a.classId));
          // Every class comes from the window around the client's position.
          for (const p of pos) expect(Math.abs(p - s.positionOf(c, t))).toBeLessThanOrEqual(s.radius);
        });
      }
      for (let c = 0; c < 4; c++) {
        const m = meanPos[c]!;
        // Least-squares slope of the mean position over the ticks ≈ streamSpeed.
        const tBar = (ticks - 1) / 2;
        const mBar = m.reduce((x, y) => x + y, 0) / ticks;
        const slope = m.reduce((acc, v, t) => acc + (t - tBar) * (v - mBar), 0) / m.reduce((acc, _, t) => acc + (t - tBar) ** 2, 0);
        expect(slope).toBeGreaterThan(0.2);
        expect(slope).toBeLessThan(0.3);
        // Means over blocks of 5 ticks rise strictly; from one tick to the next the mean moves by
        // sampling noise only (sd ≈ 0.6 here), never by a window's width (2 · radius = 9).
        const blocks = range(ticks / 5).map((b) => m.slice(b * 5, b * 5 + 5).reduce((x, y) => x + y, 0) / 5);
        for (let b = 1; b < blocks.length; b++) expect(blocks[b]!).toBeGreaterThan(blocks[b - 1]!);
        for (let t = 1; t < ticks; t++) expect(Math.abs(m[t]! - m[t - 1]!)).toBeLessThan(3);
        const sets = seen[c]!;
        // No tick where the whole class set switches …
        for (let t = 1; t < ticks; t++) expect([...sets[t]!].some((k) => sets[t - 1]!.has(k)), `client ${c} tick ${t}`).toBe(true);
        // … yet ticks far enough apart for the window to have moved on share nothing.
        const apart = Math.ceil((2 * s.radius + 1) / 0.25);
        for (let t = 0; t + apart < ticks; t++) expect([...sets[t + apart]!].some((k) => sets[t]!.has(k))).toBe(false);
      }
    }
  });

  it('puts the clients at different places: stratified offsets over the ring', () => {
    const s = new StreamSchedule(labelsOf(40, 10), range(40), 4, opts(), 9, false);
    s.offsets.forEach((o, c) => {
      expect(o).toBeGreaterThanOrEqual(c * 10);
      expect(o).toBeLessThan((c + 1) * 10);
    });
    const first = s.next()!.map((client) => new Set(client.map((a) => a.classId)));
    // Far-apart clients start on disjoint classes.
    expect([...first[0]!].some((k) => first[2]!.has(k))).toBe(false);
  });

  it('serves a subset of participants in the given order, while every position moves on with the tick', () => {
    const labels = labelsOf(60, 200);
    const all = new StreamSchedule(labels, range(60), 4, opts(), 3, false);
    const some = new StreamSchedule(labels, range(60), 4, opts(), 3, false);
    const shape = (client: ClassAssignment[]) => client.map((a) => [a.classId, a.indices.length]);
    for (let t = 0; t < 6; t++) {
      const full = all.next()!;
      const part = some.next([2, 0])!;
      expect(part).toHaveLength(2);
      // A client's draws depend on the seed, the tick and its own position only.
      expect(shape(part[0]!)).toEqual(shape(full[2]!));
      expect(shape(part[1]!)).toEqual(shape(full[0]!));
    }
    // Client 1 sat out six ticks but its stream went on: it resumes at offset + 6 · speed.
    expect(some.positionOf(1)).toBeCloseTo(some.offsets[1]! + 6 * 0.25, 12);
    const slot = new Map(some.classOrder.map((c, i) => [c, i]));
    for (const a of some.next([1])![0]!) {
      expect(Math.abs(signed(slot.get(a.classId)!, some.positionOf(1, 6), 60))).toBeLessThanOrEqual(some.radius);
    }
    expect(() => some.next([4])).toThrow(/no client 4/);
  });

  it('ends all or nothing when a window runs dry, never jumping ahead to far classes', () => {
    // 20 classes × 3 images; one client eats its window far faster than it moves.
    const labels = labelsOf(20, 3);
    const s = new StreamSchedule(labels, range(20), 1, opts({ streamWidth: 0.5 }), 4, false);
    const plans = drain(s);
    const used = plans.flat(2).reduce((n, a) => n + a.indices.length, 0);
    expect(used).toBe(plans.length * 4);
    expect(plans.length).toBeLessThan(5);
    expect(used).toBeLessThan(labels.length / 2);
    expect(s.next()).toBeUndefined();

    // A failed tick commits nothing. Classes 0–9 have 2 images each, 10–19 have 100: client 0
    // starts among the scarce ones and runs dry, client 1 never does. Client 1 draws first in the
    // tick that fails; afterwards it gets exactly what it gets when that tick is asked of it alone.
    const scarce = [...range(10).flatMap((c) => [c, c]), ...range(10).flatMap((c) => Array<number>(100).fill(c + 10))];
    const two = (): StreamSchedule => new StreamSchedule(scarce, range(20), 2, opts({ streamWidth: 0.5, streamSpeed: 0.1 }), 3, true);
    const a = two();
    const b = two();
    expect(a.offsets[0]).toBeGreaterThan(2); // its window (radius 1.5) stays inside classes 0–9
    expect(a.offsets[0]).toBeLessThan(8);
    let tick = 0;
    for (;;) {
      const full = a.next([1, 0]);
      if (!full) break;
      expect(b.next([1, 0])).toEqual(full);
      tick++;
    }
    expect(tick).toBeGreaterThan(0);
    expect(a.missions).toBe(tick);
    const after = a.next([1]);
    expect(after).toBeDefined();
    expect(after).toEqual(b.next([1]));
    expect(a.missions).toBe(tick + 1);
  });

  it('keeps the given order with fixedClassOrder and shuffles it otherwise', () => {
    const field = [9, 3, 7, 1, 5, 8, 0, 2, 6, 4];
    const fixed = new StreamSchedule(labelsOf(10, 100), field, 2, opts({ streamWidth: 0.2 }), 4, true);
    expect(fixed.classOrder).toEqual(field);
    for (let t = 0; t < 20; t++) {
      fixed.next()!.forEach((client, c) => {
        const p = fixed.positionOf(c, t);
        const neighbours = [field[Math.floor(p) % 10], field[Math.ceil(p) % 10]];
        for (const a of client) expect(neighbours).toContain(a.classId);
      });
    }
    const shuffled = new StreamSchedule(labelsOf(10, 100), field, 2, opts(), 4, false);
    expect(shuffled.classOrder).not.toEqual(field);
    expect([...shuffled.classOrder].sort()).toEqual([...field].sort());
  });

  it('rejects invalid options with a clear error', () => {
    const make = (o: Partial<StreamOptions>) => () => new StreamSchedule(labelsOf(5, 5), range(5), 2, opts(o), 1, false);
    for (const bad of [0, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(make({ streamSpeed: bad })).toThrow(/stream schedule: streamSpeed must be a positive number/);
      expect(make({ streamWidth: bad })).toThrow(/stream schedule: streamWidth must be a positive number/);
    }
    expect(make({ shotsPerClass: 0 })).toThrow(/shotsPerClass must be a positive integer/);
    expect(make({ shotsPerClass: 1.5 })).toThrow(/shotsPerClass must be a positive integer/);
    expect(() => new StreamSchedule(labelsOf(5, 5), [], 2, opts(), 1, false)).toThrow(/fieldClasses must be non-empty/);
    expect(make({ streamSpeed: 3, streamWidth: 0.01 })).not.toThrow();
  });
});

describe('stream scenario keys', () => {
  const base = { name: 't', dataset: { name: 'fashion-mnist' }, missions: { count: 3, classesPerClient: 1, shotsPerClass: 4 } };

  it('parses schedule: stream with its keys, and defaults them without changing other schedules', () => {
    const s = parseScenario({ ...base, missions: { ...base.missions, schedule: 'stream', streamSpeed: 0.5, streamWidth: 2 } });
    expect(s.missions).toMatchObject({ schedule: 'stream', streamSpeed: 0.5, streamWidth: 2 });
    const plain = parseScenario(base);
    expect(plain.missions).toMatchObject({ schedule: 'fed-recon', streamSpeed: 0.25, streamWidth: 1.5 });
    const shipped = loadScenarioFile('scenarios/glyphs-stream.yaml');
    expect(shipped.missions.schedule).toBe('stream');
  });

  it('rejects bad values, naming the key', () => {
    const bad = (missions: Record<string, unknown>) => () => parseScenario({ ...base, missions: { ...base.missions, schedule: 'stream', ...missions } });
    expect(bad({ streamSpeed: 0 })).toThrow(/missions\.streamSpeed: /);
    expect(bad({ streamSpeed: -1 })).toThrow(/missions\.streamSpeed: /);
    expect(bad({ streamSpeed: 'fast' })).toThrow(/missions\.streamSpeed: .*expected number/);
    expect(bad({ streamWidth: 0 })).toThrow(/missions\.streamWidth: /);
    expect(bad({ streamWidth: -2 })).toThrow(/missions\.streamWidth: /);
    expect(bad({ streamRate: 1 })).toThrow(/missions\.streamRate: unknown key/);
    expect(bad({ schedule: 'streaming' })).toThrow(/missions\.schedule: /);
  });
});
