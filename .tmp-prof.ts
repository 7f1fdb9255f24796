import { generateGlyphDataset } from './shared/datasets/glyph-generator.js';
let t0 = performance.now(); let last = '';
const g = generateGlyphDataset({ scripts: ['Greek','Vai'], onProgress: (p) => { if (p.phase !== last) { console.log(p.phase, 'start at', ((performance.now()-t0)/1000).toFixed(2)); last = p.phase; } } });
console.log('end', ((performance.now()-t0)/1000).toFixed(2), g.classNames.length);
