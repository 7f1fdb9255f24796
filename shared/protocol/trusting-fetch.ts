import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * A `fetch` for GET requests that trusts the certificate authority `ca` (PEM) for https URLs, as
 * a remote client needs for a coordinator with its own certificate, and presents a client
 * certificate for mutual TLS: Node's built-in fetch takes neither. Without both it is the
 * built-in fetch (the system's authorities).
 *
 * @example
 * const get = trustingFetch(readFileSync('coordinator.crt', 'utf8'));
 * const setup = await (await get('https://10.0.0.1:4000/protofed/setup', { headers })).json();
 */
export function trustingFetch(ca: string | undefined, clientCertificate?: { cert: string; key: string }): typeof fetch {
  if (ca === undefined && clientCertificate === undefined) return fetch;
  return ((input: string | URL | Request, init?: RequestInit) => new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? 'GET';
    if (method !== 'GET') throw new Error(`trustingFetch only GETs, not ${method}`);
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method, headers, ...(ca === undefined ? {} : { ca }), ...clientCertificate }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
        }
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: responseHeaders }));
      });
      res.on('error', reject);
    });
    init?.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
    req.on('error', reject);
    req.end();
  })) as typeof fetch;
}
