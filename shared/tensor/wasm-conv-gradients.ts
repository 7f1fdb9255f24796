import * as tf from '@tensorflow/tfjs';

let registered = false;

type Pad = tf.Conv2DBackpropFilterAttrs['pad'];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/**
 * Conv training kernels for the wasm backend.
 *
 * wasm has no Conv2DBackpropFilter kernel, so conv weights cannot be trained on it ("Kernel
 * 'Conv2DBackpropFilter' not registered for backend 'wasm'"); and its Conv2DBackpropInput is
 * about 9× slower than a forward convolution of the same size. Both gradients of a stride-1
 * convolution are themselves convolutions, which wasm runs fast (XNNPACK):
 * - dW: the padded input with batch and channels swapped, convolved with the output gradient;
 * - dX: the padded output gradient convolved with the 180°-rotated, transposed filter.
 * Strided convolutions fall back to slices and matmuls (dW) or the stock kernel (dX).
 * Registration makes tf.layers training and tf.grad work unchanged on wasm.
 *
 * @example
 * registerWasmConvGradients();
 * await tf.setBackend('wasm');
 * tf.grad((w) => tf.conv2d(x, w, 1, 'same').sum())(w); // works
 */
export function registerWasmConvGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (a.dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got ${a.dataFormat}`);
      return convFilterGradient(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode) as unknown as tf.TensorInfo;
    },
  });
  const stock = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (stock) {
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel({
      ...stock,
      kernelFunc: (args) => {
        const { dy, filter } = args.inputs as unknown as { dy: tf.Tensor4D; filter: tf.Tensor4D };
        const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
        if (a.dataFormat === 'NHWC' && stride1(a.strides)) {
          return convInputGradient(dy, filter, a.inputShape, a.pad, a.dimRoundingMode) as unknown as tf.TensorInfo;
        }
        return stock.kernelFunc(args);
      },
    });
  }
}

function stride1(strides: number | [number, number]): boolean {
  return typeof strides === 'number' ? strides === 1 : strides[0] === 1 && strides[1] === 1;
}

/** dW of a conv2d (NHWC, no dilation) from its input and its output gradient. */
export function convFilterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode);
    const { top, bottom, left, right } = info.padInfo;
    const [kh, kw, cin, cout] = filterShape;
    const [n] = x.shape;
    const { outHeight, outWidth, strideHeight, strideWidth } = info;
    if (strideHeight === 1 && strideWidth === 1) {
      // Rows and columns the filter actually reaches; 'same' padding can reach one fewer at the
      // bottom or right than it pads. The padding goes to the convolution (no padded copy).
      const reachH = outHeight + kh - 1 - top - x.shape[1];
      const reachW = outWidth + kw - 1 - left - x.shape[2];
      const seen = reachH < 0 || reachW < 0
        ? tf.slice(x, [0, 0, 0, 0], [n, x.shape[1] + Math.min(reachH, 0), x.shape[2] + Math.min(reachW, 0), cin])
        : x;
      const asBatch = seen.transpose([3, 1, 2, 0]) as tf.Tensor4D; // [cin, H, W, n]
      const asFilter = dy.transpose([1, 2, 0, 3]) as tf.Tensor4D; // [outH, outW, n, cout]
      const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [top, Math.max(reachH, 0)], [left, Math.max(reachW, 0)], [0, 0]];
      return tf.conv2d(asBatch, asFilter, 1, padding).transpose([1, 2, 0, 3]) as tf.Tensor4D; // [kh, kw, cin, cout]
    }
    const padded = top || bottom || left || right
      ? tf.pad(x, [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]])
      : x;
    const dyRows = dy.reshape([n * outHeight * outWidth, cout]);
    const taps: tf.Tensor2D[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const seen = tf.stridedSlice(
          padded,
          [0, i, j, 0],
          [n, i + (outHeight - 1) * strideHeight + 1, j + (outWidth - 1) * strideWidth + 1, cin],
          [1, strideHeight, strideWidth, 1],
        ) as tf.Tensor4D;
        taps.push(tf.matMul(seen.reshape([n * outHeight * outWidth, cin]), dyRows, true, false));
      }
    }
    return tf.stack(taps).reshape([kh, kw, cin, cout]) as tf.Tensor4D;
  });
}

/** dX of a stride-1 conv2d (NHWC, no dilation): the padded output gradient convolved with the rotated filter. */
export function convInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  pad: Pad,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, 1, 1, pad, dimRoundingMode);
    const [kh, kw] = filter.shape;
    const { top, left } = info.padInfo;
    const [, inH, inW] = inputShape;
    // dX[y] = Σ_i dY[y + top − i] W[i]: pad dY so that every such index exists (zeros elsewhere).
    const padTop = kh - 1 - top;
    const padLeft = kw - 1 - left;
    const padBottom = inH + kh - 1 - padTop - dy.shape[1];
    const padRight = inW + kw - 1 - padLeft - dy.shape[2];
    const rotated = tf.reverse(filter, [0, 1]).transpose([0, 1, 3, 2]) as tf.Tensor4D;
    if (padTop >= 0 && padBottom >= 0 && padLeft >= 0 && padRight >= 0) {
      // The padding goes to the convolution (no padded copy of dY).
      return tf.conv2d(dy, rotated, 1, [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]]);
    }
    return tf.conv2d(cropOrPad(dy, padTop, padBottom, padLeft, padRight), rotated, 1, 'valid');
  });
}

/** Pads with zeros (positive amounts) or crops (negative amounts) the spatial dims of an NHWC tensor. */
function cropOrPad(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const [n, h, w, c] = t.shape;
  const cropped = tf.slice(t, [0, Math.max(-top, 0), Math.max(-left, 0), 0], [
    n, h - Math.max(-top, 0) - Math.max(-bottom, 0), w - Math.max(-left, 0) - Math.max(-right, 0), c,
  ]);
  return tf.pad(cropped, [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]]) as tf.Tensor4D;
}
