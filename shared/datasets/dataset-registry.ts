import { fashionMnistSubsetDir, loadFashionMnist } from './fashion-mnist.js';
import type { LabelledDataset } from './labelled-dataset.js';

/** Which dataset to use, as a scenario names it. `dir: "embedded"` forces the copy shipped in the repo. */
export interface DatasetSpec {
  name: 'fashion-mnist';
  dir?: string | undefined;
}

/** Loads a named dataset's train and test splits. */
export function loadDataset(spec: DatasetSpec): LabelledDataset {
  switch (spec.name) {
    case 'fashion-mnist': {
      if (spec.dir === 'embedded') return { ...loadFashionMnist(fashionMnistSubsetDir()), kind: 'embedded-subset' };
      return loadFashionMnist(spec.dir);
    }
    default:
      throw new Error(`unknown dataset "${(spec as { name: string }).name}"`);
  }
}
