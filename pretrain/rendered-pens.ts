import type { ImageSet, LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { loadGlyphGenerator } from '../shared/datasets/glyph-tools.js';

/**
 * Pen augmentation at the glyph generator's own resolution: `classes` of a generated glyph set
 * drawn again with each pen offset in `pens` (steps of 1/84 of the font size, < 0 thinner), by the
 * same drawers as the set (renderGlyphClasses), as extra image sets for the episode sampler.
 * Deterministic: the set's generator seed, size and instances fix every draw.
 *
 * @example
 * const extra = await renderedPens(glyphs, trainClasses, [-2, -1, 1, 2]); // 4 × (train, test) sets
 */
export async function renderedPens(data: LabelledDataset, classes: readonly number[], pens: readonly number[]): Promise<ImageSet[]> {
  if (pens.length === 0) return [];
  const generator = (data as { meta?: { generator?: { seed?: number; size?: number; instances?: number } } }).meta?.generator;
  if (!generator) {
    throw new Error(`pretrain.renderPens: the dataset "${data.name}" was not made by the glyph generator (its image pack has no generator record), so its classes cannot be drawn with other pens; remove renderPens or use augment.pen`);
  }
  const { renderGlyphClasses } = await loadGlyphGenerator('pretrain.renderPens draws the base classes again');
  const classNames = classes.map((c) => data.classNames[c]!);
  return pens.flatMap((penOffset) => {
    const { train, test } = renderGlyphClasses({ seed: generator.seed, size: generator.size, instances: generator.instances, classNames, labels: classes, penOffset });
    return [train, test];
  });
}
