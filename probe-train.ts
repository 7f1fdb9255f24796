import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './shared/tensor/tensor-backend.js';
import { buildConv4 } from './shared/embedding/conv4.js';
import { TrainableConv4 } from './pretrain/trainable-conv4.js';
const backend = await selectBackend((process.argv[2] ?? 'wasm') as 'wasm');
const shape = { rows: 28, cols: 28, channels: 1 };
const net = TrainableConv4.fromModel(buildConv4(shape), shape);
const opt = tf.train.adam(1e-3);
const x = tf.randomNormal([50, 28, 28, 1]) as tf.Tensor4D;
for (let step = 0; step < 5; step++) {
  const t = performance.now();
  const loss = opt.minimize(() => net.forward(x, true).square().mean() as tf.Scalar, true, net.trainable());
  console.log(backend, step, (await loss!.data())[0], (performance.now() - t).toFixed(0), 'ms', tf.memory().numTensors);
  loss!.dispose();
}
