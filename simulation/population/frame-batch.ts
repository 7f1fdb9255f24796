/**
 * Many frames in one buffer, for crossing a worker_threads boundary: one transfer instead of a
 * structured clone per frame (a frame from msgpackr may be a view into a larger shared buffer,
 * which a clone would copy whole).
 */
export interface FrameBatch {
  bytes: Uint8Array;
  /** Frame i is bytes[ends[i - 1] .. ends[i]), with ends[-1] = 0. */
  ends: Uint32Array;
}

export function packFrames(frames: readonly Uint8Array[]): FrameBatch {
  let total = 0;
  for (const f of frames) total += f.byteLength;
  const bytes = new Uint8Array(total);
  const ends = new Uint32Array(frames.length);
  let at = 0;
  frames.forEach((f, i) => {
    bytes.set(f, at);
    at += f.byteLength;
    ends[i] = at;
  });
  return { bytes, ends };
}

export function frameAt(batch: FrameBatch, i: number): Uint8Array {
  return batch.bytes.subarray(i === 0 ? 0 : batch.ends[i - 1]!, batch.ends[i]!);
}

/** The buffers to hand to postMessage's transfer list. */
export function transferables(...batches: FrameBatch[]): ArrayBuffer[] {
  return batches.flatMap((b) => [b.bytes.buffer as ArrayBuffer, b.ends.buffer as ArrayBuffer]);
}
