import { describe, expect, it } from 'vitest';
import { predictLinearOnTensors, trainHead, type HeadRows } from '../shared/strategies/linear-head.js';
import { SeededRng } from '../shared/learning/rng.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';

const DIM = 6;

function blobs(rng: SeededRng, classes: number[], perClass: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(classes.length * perClass * DIM);
  const y = new Int32Array(classes.length * perClass);
  classes.forEach((c, j) => {
    for (let k = 0; k < perClass; k++) {
      const r = j * perClass + k;
      y[r] = c;
      for (let d = 0; d < DIM; d++) x[r * DIM + d] = (d === j % DIM ? 3 : 0) + (rng.next() - 0.5);
    }
  });
  return { x, y };
}

function scalarArgmax(x: Float32Array, rows: number, head: HeadRows): number[] {
  const ids = [...head.keys()].sort((a, b) => a - b);
  return Array.from({ length: rows }, (_, r) => {
    let best = -Infinity;
    let at = -1;
    for (const c of ids) {
      const w = head.get(c)!;
      let z = w[DIM]!;
      for (let d = 0; d < DIM; d++) z += w[d]! * x[r * DIM + d]!;
      if (z > best) {
        best = z;
        at = c;
      }
    }
    return at;
  });
}

describe('the linear head of the fedavg-head baseline', () => {
  it('learns separable classes by SGD, and predicts on tensors as a scalar arg-max does', async () => {
    await selectBackend('cpu');
    const rng = new SeededRng(4);
    const classes = [3, 8, 11, 20];
    const train = blobs(rng, classes, 20);
    const head = trainHead(new Map(), classes, train.x, train.y, DIM, { epochs: 20, learningRate: 0.1, batchSize: 8, seed: 1 });
    const test = blobs(rng, classes, 10);
    const predicted = await predictLinearOnTensors(test.x, test.y.length, head, DIM);
    const correct = predicted.filter((p, i) => p === test.y[i]).length;
    expect(correct / test.y.length).toBeGreaterThan(0.95);
    expect([...predicted]).toEqual(scalarArgmax(test.x, test.y.length, head));
    // Same seed, same head; the start is not changed.
    const again = trainHead(new Map(), classes, train.x, train.y, DIM, { epochs: 20, learningRate: 0.1, batchSize: 8, seed: 1 });
    expect([...again.get(8)!]).toEqual([...head.get(8)!]);
  });

  it('trained on new classes only, it forgets the old ones', async () => {
    await selectBackend('cpu');
    const rng = new SeededRng(5);
    const options = { epochs: 20, learningRate: 0.1, batchSize: 8, seed: 2 };
    const old = blobs(rng, [0, 1], 20);
    const first = trainHead(new Map(), [0, 1], old.x, old.y, DIM, options);
    const fresh = blobs(rng, [2, 3], 20);
    const second = trainHead(first, [0, 1, 2, 3], fresh.x, fresh.y, DIM, options);
    const accuracyOnOld = async (h: HeadRows) => {
      const p = await predictLinearOnTensors(old.x, old.y.length, h, DIM);
      return p.filter((v, i) => v === old.y[i]).length / old.y.length;
    };
    expect(await accuracyOnOld(first)).toBeGreaterThan(0.95);
    expect(await accuracyOnOld(second)).toBeLessThan(0.5);
    expect(() => trainHead(new Map(), [0], old.x, old.y, DIM, options)).toThrow(/class 1, which is not among the head's classes/);
  });
});
