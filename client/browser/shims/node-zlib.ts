/**
 * `node:zlib` for the browser bundle of the client. The browser client does not offer the
 * `deflate` codec feature in its hello (a run that needs it refuses the client with that reason),
 * so the class block never deflates or inflates here.
 */
function unavailable(): never {
  throw new Error('deflate is not available in the browser client');
}

export const deflateRawSync = unavailable;
export const inflateRawSync = unavailable;
