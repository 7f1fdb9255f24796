import { expect } from 'vitest';
import { CodecError } from '../../shared/protocol/codecs/index.js';

/** Expects `fn` to throw a CodecError, whose message matches `message` when given. */
export function expectCodecError(fn: () => unknown, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(CodecError);
  if (message) expect((thrown as Error).message).toMatch(message);
}
