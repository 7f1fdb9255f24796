/** The shape of images a backbone accepts. */
export interface ImageShape {
  rows: number;
  cols: number;
  channels: number;
}

/**
 * A frozen embedding network: images in, one vector per image out.
 * The federation code sees only this interface, so any model plugs in.
 */
export interface Backbone {
  readonly name: string;
  /** Length of one embedding. */
  readonly dim: number;
  /** Identifies the exact function computed (weights and preprocessing); clients must agree on it. */
  readonly modelHash: string;
  readonly input: ImageShape;
  /** What computes the embeddings, when that changes their last bits ('winograd-wasm'); part of the embedding cache's key. */
  readonly engine?: string | undefined;
  /** Embeds `count` images stored contiguously as u8 pixels (row-major, channels last); returns count×dim values. */
  embed(images: Uint8Array, count: number): Promise<Float32Array>;
  dispose(): void;
}
