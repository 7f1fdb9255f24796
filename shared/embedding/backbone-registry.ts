import type { Backbone, ImageShape } from '../backbone.js';
import { PixelsBackbone } from './pixels-backbone.js';

export interface BackboneSpec {
  name: 'pixels';
}

/** Builds the backbone a scenario names, for images of the dataset's shape. */
export async function createBackbone(spec: BackboneSpec, input: ImageShape): Promise<Backbone> {
  switch (spec.name) {
    case 'pixels':
      return new PixelsBackbone(input);
    default:
      throw new Error(`unknown backbone "${(spec as { name: string }).name}"`);
  }
}
