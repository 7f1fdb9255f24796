/** The glyph benchmark's defaults (apart from the generator, which needs the rendering packages). */
export const GLYPH_DEFAULTS = Object.freeze({ seed: 1, size: 28, instances: 20, maxClassesPerScript: 60, backgroundFraction: 0.6 });
