import type { Backbone, ImageShape } from './backbone.js';

/**
 * The `pixels` backbone: each image flattened and scaled to [0, 1].
 * It needs no tensor backend, and it is the baseline every learned backbone must beat.
 *
 * @example
 * const b = new PixelsBackbone({ rows: 28, cols: 28, channels: 1 });
 * const vectors = await b.embed(images, 10); // 10 × 784 floats
 */
export class PixelsBackbone implements Backbone {
  readonly name = 'pixels';
  readonly dim: number;
  readonly modelHash: string;

  constructor(readonly input: ImageShape) {
    this.dim = input.rows * input.cols * input.channels;
    this.modelHash = `pixels/v1/${input.rows}x${input.cols}x${input.channels}/scale-1-255`;
  }

  async embed(images: Uint8Array, count: number): Promise<Float32Array> {
    if (images.length !== count * this.dim) {
      throw new RangeError(`pixels backbone: expected ${count} images of ${this.dim} bytes, got ${images.length} bytes`);
    }
    const out = new Float32Array(images.length);
    for (let i = 0; i < images.length; i++) out[i] = images[i]! / 255;
    return out;
  }

  dispose(): void {}
}
