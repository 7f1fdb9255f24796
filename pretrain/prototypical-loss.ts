import * as tf from '@tensorflow/tfjs';
import type { EpisodeShape } from './episode-sampler.js';

/**
 * The prototypical-network loss (Snell et al. 2017) of one episode: class prototypes are the
 * means of the support embeddings; each query is classified by softmax over negative squared
 * distances to them. Returns the mean cross-entropy and the query accuracy.
 *
 * @example
 * const { loss, accuracy } = prototypicalLoss(embeddings, { ways: 5, shots: 5, queries: 15 });
 */
export function prototypicalLoss(embeddings: tf.Tensor2D, shape: EpisodeShape): { loss: tf.Scalar; accuracy: tf.Scalar } {
  const { ways, shots, queries } = shape;
  const dim = embeddings.shape[1];
  const perClass = embeddings.reshape([ways, shots + queries, dim]);
  const support = perClass.slice([0, 0, 0], [ways, shots, dim]);
  const query = perClass.slice([0, shots, 0], [ways, queries, dim]).reshape([ways * queries, dim]);
  const prototypes = support.mean(1) as tf.Tensor2D;
  // ‖q − p‖² = ‖q‖² − 2 q·p + ‖p‖²
  const distances = query.square().sum(1, true)
    .sub(tf.matMul(query, prototypes.transpose()).mul(2))
    .add(prototypes.square().sum(1).reshape([1, ways]));
  const logits = distances.neg();
  const labels = tf.oneHot(tf.range(0, ways, 1, 'int32').reshape([ways, 1]).tile([1, queries]).reshape([-1]), ways);
  const loss = tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  const accuracy = logits.argMax(1).equal(labels.argMax(1)).cast('float32').mean() as tf.Scalar;
  return { loss, accuracy };
}
