import { describe, expect, it } from 'vitest';
import { ClassIncrementalSchedule } from '../coordinator/schedules/class-incremental.js';
import { DirichletSchedule } from '../coordinator/schedules/dirichlet.js';
import { OverlappingSchedule } from '../coordinator/schedules/overlapping.js';
import { FedReconSchedule } from '../coordinator/schedules/fed-recon.js';
import { SeededRng } from '../shared/learning/rng.js';

describe('seeded RNG', () => {
  it('gives the same stream for the same seed and different streams for different seeds or forks', () => {
    const r1 = new SeededRng(3);
    const r2 = new SeededRng(3);
    const s1 = Array.from({ length: 50 }, () => r1.next());
    expect(Array.from({ length: 50 }, () => r2.next())).toEqual(s1);
    const other = new SeededRng(4);
    expect(Array.from({ length: 50 }, () => other.next())).not.toEqual(s1);
    expect(new SeededRng(3).fork('x').next()).not.toBe(new SeededRng(3).fork('y').next());
  });

  it('draws integers uniformly enough and samples without repeats', () => {
    const rng = new SeededRng(99);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) bins[rng.int(10)]++;
    for (const b of bins) expect(Math.abs(b - 10_000)).toBeLessThan(500);
    for (const [n, k] of [[10, 10], [1000, 5], [50, 30]] as const) {
      const s = rng.sample(n, k);
      expect(new Set(s).size).toBe(k);
      for (const v of s) expect(v).toBeLessThan(n);
    }
    expect(() => rng.sample(3, 4)).toThrow();
  });
});

describe('the fed-recon mission schedule', () => {
  const labels = Array.from({ length: 300 }, (_, i) => i % 5); // 5 classes × 60 images

  it('draws images without replacement across clients and missions until the pool runs dry', () => {
    const s = new FedReconSchedule(labels, [0, 1, 2, 3, 4], 3, { classesPerClient: 2, shotsPerClass: 5 }, 1);
    const used: number[] = [];
    let missions = 0;
    for (let plan = s.next(); plan; plan = s.next()) {
      missions++;
      expect(plan).toHaveLength(3);
      for (const client of plan) {
        expect(client).toHaveLength(2);
        expect(new Set(client.map((a) => a.classId)).size).toBe(2);
        for (const a of client) {
          expect(a.indices).toHaveLength(5);
          for (const i of a.indices) expect(labels[i]).toBe(a.classId);
          used.push(...a.indices);
        }
      }
    }
    expect(new Set(used).size).toBe(used.length);
    // 300 images, 30 per mission: exactly 10 full missions when classes drain evenly, never more.
    expect(missions).toBeLessThanOrEqual(10);
    expect(missions).toBeGreaterThanOrEqual(8);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const plan = (seed: number) => new FedReconSchedule(labels, [0, 1, 2, 3, 4], 2, { classesPerClient: 2, shotsPerClass: 3 }, seed).next();
    expect(plan(5)).toEqual(plan(5));
    expect(plan(5)).not.toEqual(plan(6));
  });

  it('takes the classes in the given order, cycling, when asked to', () => {
    const order = [4, 2, 0, 3, 1];
    const s = new FedReconSchedule(labels, order, 2, { classesPerClient: 2, shotsPerClass: 3 }, 1, true);
    const classes = (plan: { classId: number }[][]) => plan.map((client) => client.map((a) => a.classId));
    expect(classes(s.next()!)).toEqual([[2, 4], [0, 3]]);
    expect(classes(s.next()!)).toEqual([[1, 4], [0, 2]]);
    // The images are still the seeded draw: another seed, the same classes, other images.
    const other = new FedReconSchedule(labels, order, 2, { classesPerClient: 2, shotsPerClass: 3 }, 2, true).next()!;
    expect(classes(other)).toEqual([[2, 4], [0, 3]]);
  });
});

describe('the class-incremental schedule', () => {
  const labels = Array.from({ length: 200 }, (_, i) => i % 10); // 10 classes × 20 images

  it('learns every class exactly once, in a seeded order, then stops', () => {
    const s = new ClassIncrementalSchedule(labels, [2, 3, 4, 5, 6, 7], 2, { classesPerClient: 1, shotsPerClass: 15 }, 4, false);
    const seen: number[] = [];
    for (let plan = s.next(); plan; plan = s.next()) {
      expect(plan).toHaveLength(2);
      for (const client of plan) {
        for (const a of client) {
          expect(a.indices).toHaveLength(15);
          for (const i of a.indices) expect(labels[i]).toBe(a.classId);
          seen.push(a.classId);
        }
      }
    }
    expect(s.missions).toBe(3);
    expect([...seen].sort()).toEqual([2, 3, 4, 5, 6, 7]);
    expect(seen).toEqual([...s.classOrder]);
    const again = new ClassIncrementalSchedule(labels, [2, 3, 4, 5, 6, 7], 2, { classesPerClient: 1, shotsPerClass: 15 }, 4, false);
    expect(again.classOrder).toEqual(s.classOrder);
  });

  it('keeps the given order when asked to', () => {
    const s = new ClassIncrementalSchedule(labels, [9, 1, 5], 1, { classesPerClient: 1, shotsPerClass: 5 }, 4, true);
    expect([s.next()![0]![0]!.classId, s.next()![0]![0]!.classId, s.next()![0]![0]!.classId]).toEqual([9, 1, 5]);
    expect(s.next()).toBeUndefined();
  });
});

describe('Dirichlet label skew', () => {
  it('draws gamma and Dirichlet variates with the right means', () => {
    const rng = new SeededRng(8);
    for (const shape of [0.3, 1, 4.5]) {
      let sum = 0;
      for (let i = 0; i < 20_000; i++) sum += rng.gamma(shape);
      expect(sum / 20_000).toBeCloseTo(shape, 1);
    }
    const p = rng.dirichlet(0.5, 10);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('small α concentrates each client on a few classes; large α spreads them; images are never reused', () => {
    const labels = Array.from({ length: 10 * 400 }, (_, i) => i % 10);
    const field = Array.from({ length: 10 }, (_, i) => i);
    const topShare = (alpha: number): number => {
      const s = new DirichletSchedule(labels, field, 6, { classesPerClient: 1, shotsPerClass: 2 }, 3, alpha);
      const counts = Array.from({ length: 6 }, () => new Array<number>(10).fill(0));
      const used: number[] = [];
      for (let m = 0; m < 40; m++) {
        const plan = s.next()!;
        plan.forEach((client, c) => client.forEach((a) => {
          counts[c]![a.classId]!++;
          used.push(...a.indices);
        }));
      }
      expect(new Set(used).size).toBe(used.length);
      return counts.reduce((sum, row) => sum + Math.max(...row) / 40, 0) / 6;
    };
    const skewed = topShare(0.05);
    const even = topShare(100);
    expect(skewed).toBeGreaterThan(0.7);
    expect(even).toBeLessThan(0.35);
  });
});

describe('the overlapping schedule', () => {
  it('gives every block of classes to every client, lag missions apart, with fresh images', () => {
    const labels = Array.from({ length: 6 * 100 }, (_, i) => i % 6);
    const s = new OverlappingSchedule(labels, [0, 1, 2, 3, 4, 5], 3, { classesPerClient: 2, shotsPerClass: 4 }, 2, 2);
    const blockAt: string[][] = [[], [], []];
    const used: number[] = [];
    for (let m = 0; m < 9; m++) {
      s.next()!.forEach((client, c) => {
        expect(client).toHaveLength(2);
        blockAt[c]![m] = client.map((a) => a.classId).join(',');
        client.forEach((a) => used.push(...a.indices));
      });
    }
    expect(new Set(used).size).toBe(used.length);
    for (let c = 0; c < 3; c++) expect(new Set(blockAt[c]).size).toBe(3);
    // What client c learns in mission m, client c + 1 learns two missions later.
    for (let m = 0; m < 7; m++) {
      expect(blockAt[1]![m + 2]).toBe(blockAt[0]![m]);
      expect(blockAt[2]![m + 2]).toBe(blockAt[1]![m]);
    }
  });

  it('cuts its blocks from the given order when asked to', () => {
    const labels = Array.from({ length: 6 * 100 }, (_, i) => i % 6);
    const s = new OverlappingSchedule(labels, [5, 3, 1, 0, 2, 4], 1, { classesPerClient: 2, shotsPerClass: 4 }, 2, 1, true);
    const blocks = [0, 1, 2].map(() => s.next()![0]!.map((a) => a.classId));
    expect(blocks).toEqual([[5, 3], [1, 0], [2, 4]]);
  });
});
