import { WINOGRAD_CONV_POOL_WASM } from './kernels/winograd-conv-pool.wasm.js';

/**
 * One block of a conv net as the Winograd kernel runs it: a 3×3 'same' convolution with bias,
 * ReLU, then a 2×2 stride-2 'valid' max-pool.
 */
export interface ConvPoolBlock {
  /** HWIO weights, [3][3][inChannels][outChannels]. */
  filter: Float32Array;
  bias: Float32Array;
  inChannels: number;
  outChannels: number;
}

interface KernelExports {
  memory: WebAssembly.Memory;
  scratchBytes(c: number, k: number): number;
  convPool(x: number, n: number, h: number, w: number, c: number, u: number, bias: number, k: number, scratch: number, y: number): void;
}

/** Images per call into the kernel: bounds its memory (a 42×42×64 activation is 450 KB an image) and keeps a chunk's activations in cache. */
const CHUNK = 16;
/** F(2×2, 3×3)'s weight transform G. */
const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]] as const;

let compiled: WebAssembly.Module | undefined;

/** Whether the kernel runs a block with these channel counts (SIMD over 4 in and 8 out channels). */
export function winogradFits(inChannels: number, outChannels: number): boolean {
  return inChannels % 4 === 0 && outChannels % 8 === 0 && inChannels > 0 && outChannels > 0;
}

/** G g Gᵀ for every (in, out) channel pair: [16][inChannels][outChannels]. */
export function winogradWeights(filter: Float32Array, c: number, k: number): Float32Array {
  if (filter.length !== 9 * c * k) throw new RangeError(`a 3×3 filter of ${c}→${k} channels has ${9 * c * k} weights, not ${filter.length}`);
  const u = new Float32Array(16 * c * k);
  const ck = c * k;
  for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 4; b++) {
      const out = (a * 4 + b) * ck;
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) {
          const g = G[a]![i]! * G[b]![j]!;
          if (g === 0) continue;
          const src = (i * 3 + j) * ck;
          for (let q = 0; q < ck; q++) u[out + q]! += g * filter[src + q]!;
        }
      }
    }
  }
  return u;
}

/**
 * A chain of conv3×3 → ReLU → max-pool 2×2 blocks run by a hand-written wasm SIMD kernel
 * (kernels/winograd-conv-pool.as.ts), Winograd F(2×2, 3×3): 16 multiplies per output tile and
 * channel pair where a direct convolution takes 36, with the pool taken on each tile. On this
 * machine it ran conv4's 14×14 block (256 images, copying in included) in 56–72 ms where
 * tfjs-wasm's XNNPACK convolution and pool took 100–120 (scratch timings; the whole net's figures
 * are in bench/results/embed.json). Results agree with the direct convolution to about 1e-6
 * relative (Winograd reorders the sums).
 * Each chain owns its wasm memory; the whole chain runs on each chunk of images without leaving it.
 *
 * @example
 * const chain = new WinogradConvPool([{ filter, bias, inChannels: 64, outChannels: 64 }]);
 * const { data, rows } = chain.run(activations, 256, 14, 14); // 256 × 7 × 7 × 64
 */
export class WinogradConvPool {
  private readonly kernel: KernelExports;
  private readonly blocks: { u: number; bias: number; c: number; k: number }[];
  private readonly dataStart: number;

  constructor(blocks: readonly ConvPoolBlock[]) {
    if (blocks.length === 0) throw new RangeError('a Winograd chain needs at least one block');
    blocks.forEach((b, i) => {
      if (!winogradFits(b.inChannels, b.outChannels)) throw new RangeError(`block ${i}: the Winograd kernel takes in channels in 4s and out channels in 8s, not ${b.inChannels}→${b.outChannels}`);
      if (i > 0 && b.inChannels !== blocks[i - 1]!.outChannels) throw new RangeError(`block ${i} takes ${b.inChannels} channels but block ${i - 1} gives ${blocks[i - 1]!.outChannels}`);
      if (b.bias.length !== b.outChannels) throw new RangeError(`block ${i}: ${b.bias.length} biases for ${b.outChannels} out channels`);
    });
    compiled ??= new WebAssembly.Module(Uint8Array.from(atob(WINOGRAD_CONV_POOL_WASM), (ch) => ch.charCodeAt(0)));
    this.kernel = new WebAssembly.Instance(compiled, { env: { abort: () => { throw new Error('the Winograd kernel aborted'); } } }).exports as unknown as KernelExports;
    let at = this.kernel.memory.buffer.byteLength;
    const place = (values: Float32Array): number => {
      const ptr = at;
      at += align(values.byteLength);
      this.ensure(at);
      new Float32Array(this.kernel.memory.buffer, ptr, values.length).set(values);
      return ptr;
    };
    this.blocks = blocks.map((b) => ({ u: place(winogradWeights(b.filter, b.inChannels, b.outChannels)), bias: place(b.bias), c: b.inChannels, k: b.outChannels }));
    this.dataStart = at;
  }

  /** Runs every block on `n` images of rows × cols × (first block's in channels), NHWC. */
  run(input: Float32Array, n: number, rows: number, cols: number): { data: Float32Array; rows: number; cols: number; channels: number } {
    const c0 = this.blocks[0]!.c;
    if (input.length !== n * rows * cols * c0) throw new RangeError(`${input.length} values are not ${n} images of ${rows}×${cols}×${c0}`);
    const sizes = [{ rows, cols }];
    for (const _ of this.blocks) {
      const last = sizes[sizes.length - 1]!;
      if (last.rows < 2 || last.cols < 2) throw new RangeError(`a ${last.rows}×${last.cols} activation is too small for a 2×2 pool`);
      sizes.push({ rows: last.rows >> 1, cols: last.cols >> 1 });
    }
    const kLast = this.blocks[this.blocks.length - 1]!.k;
    const out = sizes[sizes.length - 1]!;
    const perIn = rows * cols * c0;
    const perOut = out.rows * out.cols * kLast;
    // Memory: scratch, then two activation buffers the blocks alternate between.
    const scratch = Math.max(...this.blocks.map((b) => this.kernel.scratchBytes(b.c, b.k)));
    const largest = Math.max(...sizes.map((s, i) => s.rows * s.cols * (i === 0 ? c0 : this.blocks[i - 1]!.k))) * 4 * CHUNK;
    const scratchAt = this.dataStart;
    const buffers = [scratchAt + align(scratch), scratchAt + align(scratch) + align(largest)];
    this.ensure(buffers[1]! + align(largest));
    const result = new Float32Array(n * perOut);
    for (let start = 0; start < n; start += CHUNK) {
      const m = Math.min(CHUNK, n - start);
      new Float32Array(this.kernel.memory.buffer, buffers[0]!, m * perIn).set(input.subarray(start * perIn, (start + m) * perIn));
      let from = 0;
      this.blocks.forEach((b, i) => {
        this.kernel.convPool(buffers[from]!, m, sizes[i]!.rows, sizes[i]!.cols, b.c, b.u, b.bias, b.k, scratchAt, buffers[1 - from]!);
        from = 1 - from;
      });
      result.set(new Float32Array(this.kernel.memory.buffer, buffers[from]!, m * perOut), start * perOut);
    }
    return { data: result, rows: out.rows, cols: out.cols, channels: kLast };
  }

  private ensure(bytes: number): void {
    const have = this.kernel.memory.buffer.byteLength;
    if (bytes > have) this.kernel.memory.grow(Math.ceil((bytes - have) / 65536));
  }
}

const align = (bytes: number): number => Math.ceil(bytes / 64) * 64;
