/**
 * Compiles the AssemblyScript kernels under shared/tensor/kernels/ into the TypeScript modules
 * that carry them (base64 wasm). Run after changing a kernel; a test checks that the committed
 * module is what its source compiles to.
 *
 *   npm run build:kernels
 */
import { writeFileSync } from 'node:fs';
import { compileKernel, KERNELS, kernelModule } from './kernel-compiler.js';

for (const k of KERNELS) {
  const wasm = await compileKernel(k.source);
  writeFileSync(k.module, kernelModule(k.source, k.constant, wasm));
  process.stdout.write(`${k.module}: ${wasm.length} bytes of wasm\n`);
}
