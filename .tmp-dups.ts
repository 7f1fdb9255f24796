import { generateGlyphDataset } from './shared/datasets/glyph-generator.js';
generateGlyphDataset({ instances: 2, maxClassesPerScript: 1000 });
