import { loadOmniglot } from './shared/datasets/omniglot.js';
const d = loadOmniglot('/tmp/gl/omni', { size: 28 });
console.log(d.classNames.length, d.classNames.slice(0, 3), d.train.count, d.test.count, d.baseClasses?.length, new Set(d.classGroups).size);
let s = 0; for (let i = 0; i < 784; i++) s += d.train.images[i]!; console.log('mean first image', s / 784);
