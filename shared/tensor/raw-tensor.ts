import * as tf from '@tensorflow/tfjs';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

function wasmBackend(): WasmBackendLike | undefined {
  return tf.getBackend() === 'wasm' ? (tf.backend() as unknown as WasmBackendLike) : undefined;
}

/**
 * The float32 values of a tensor without a copy where the backend allows it: a view of the wasm
 * heap on wasm (valid until the next allocation on that heap), the backend's own array on cpu.
 * Read only: writing into it changes the tensor.
 */
export function rawView(t: tf.Tensor): Float32Array {
  if (t.dtype !== 'float32') throw new TypeError(`rawView needs a float32 tensor, got ${t.dtype}`);
  const wasm = wasmBackend();
  if (wasm) return wasm.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: 'float32' });
  return t.dataSync() as Float32Array;
}

/**
 * A new float32 tensor whose values `fill` writes in place (on wasm straight into the heap, with
 * no copy). `fill` gets the output first and must take any views of other tensors inside it,
 * after the output was allocated, since an allocation can move the wasm heap.
 *
 * @example
 * const y = rawTensor([n, 64], (out) => { const x = rawView(t); for (...) out[i] = f(x[i]); });
 */
export function rawTensor<R extends tf.Rank>(shape: number[], fill: (out: Float32Array) => void): tf.Tensor<R> {
  const wasm = wasmBackend();
  if (wasm) {
    const info = wasm.makeOutput(shape, 'float32');
    fill(wasm.typedArrayFromHeap(info));
    return tf.engine().makeTensorFromTensorInfo(info, tf.backend()) as tf.Tensor<R>;
  }
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fill(values);
  return tf.tensor(values, shape as number[], 'float32') as unknown as tf.Tensor<R>;
}
