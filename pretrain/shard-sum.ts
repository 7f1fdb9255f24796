import type { ShardSum } from './conv4-fused-kernels.js';

const COUNT = 0;
const GENERATION = 1;
const FAILED = 2;
const CONTROL_BYTES = 16;

/**
 * Shared memory for the threads that split one batch: a barrier and two slots of `slotLength`
 * float64s per thread (sums alternate between the two sets, so one barrier per sum suffices).
 * Made by the main thread and passed to every worker.
 */
export function shardSumMemory(threads: number, slotLength: number): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_BYTES + 2 * threads * slotLength * 8);
}

/** Polls before sleeping: waking a thread from Atomics.wait takes longer than most waits here. */
const SPINS = 2000;

/** Raised in every thread of a group when one of them failed, instead of waiting forever. */
export class ShardGroupFailed extends Error {}

/**
 * The ShardSum of thread `rank` of `threads`: every thread writes its vector into its slot, waits
 * for all the others, and adds the slots in rank order, so that every thread gets bit-identical
 * sums (and so takes identical optimizer steps). Blocks with Atomics.wait: for worker threads only.
 *
 * @example
 * const sum = shardSum(memory, rank, threads, slotLength);
 * sum(channelSums); // now the sums over every thread's shard
 */
export function shardSum(memory: SharedArrayBuffer, rank: number, threads: number, slotLength: number, timeoutMs = 120_000): ShardSum & { fail(): void; waitedMs: number } {
  const control = new Int32Array(memory, 0, CONTROL_BYTES / 4);
  const sets = [0, 1].map((i) => new Float64Array(memory, CONTROL_BYTES + i * threads * slotLength * 8, threads * slotLength));
  let phase = 0;
  const barrier = (): void => {
    const generation = Atomics.load(control, GENERATION);
    if (Atomics.add(control, COUNT, 1) === threads - 1) {
      Atomics.store(control, COUNT, 0);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
    } else {
      const started = performance.now();
      for (let i = 0; i < SPINS && Atomics.load(control, GENERATION) === generation; i++);
      while (Atomics.load(control, GENERATION) === generation) {
        if (Atomics.load(control, FAILED)) throw new ShardGroupFailed('another training thread failed');
        if (Atomics.wait(control, GENERATION, generation, timeoutMs) === 'timed-out') {
          throw new ShardGroupFailed(`training threads did not meet within ${timeoutMs} ms`);
        }
      }
      sum.waitedMs += performance.now() - started;
    }
    if (Atomics.load(control, FAILED)) throw new ShardGroupFailed('another training thread failed');
  };
  const sum = ((values: Float64Array): void => {
    if (threads === 1) return;
    const n = values.length;
    if (n > slotLength) throw new RangeError(`a shard sum of ${n} values does not fit slots of ${slotLength}`);
    // Slots alternate between two sets: a thread that writes the next sum's set cannot overwrite
    // a slot another thread is still reading, since that thread has not reached this barrier.
    const slots = sets[phase]!;
    phase ^= 1;
    slots.set(values, rank * slotLength);
    barrier();
    values.set(slots.subarray(0, n));
    for (let t = 1; t < threads; t++) {
      const base = t * slotLength;
      for (let i = 0; i < n; i++) values[i]! += slots[base + i]!;
    }
  }) as ShardSum & { fail(): void; waitedMs: number };
  /** Milliseconds this thread has spent waiting for the others (load imbalance and wake-ups). */
  sum.waitedMs = 0;
  sum.fail = () => {
    Atomics.store(control, FAILED, 1);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
  };
  return sum;
}
