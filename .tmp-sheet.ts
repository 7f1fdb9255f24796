import { writeFileSync } from 'node:fs';
import { readImagePack } from './shared/datasets/image-pack.js';
import { renderContactSheet } from './shared/datasets/glyph-generator.js';
const t = performance.now();
const d = readImagePack(process.argv[2]!);
console.log('read ms', (performance.now() - t).toFixed(0), d.classNames.length, d.train.count, d.test.count);
writeFileSync(process.argv[3]!, renderContactSheet(d, { classes: Number(process.argv[4] ?? 40), seed: Number(process.argv[5] ?? 1), instances: 10, columns: 3, scale: 2 }));
