import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = any>(): T;
}

/**
 * Send exactly this request target (no URL normalisation, unlike fetch): needed for path-escape
 * and absolute-form tests. `base` is `http://host:port`.
 */
export function rawRequest(
  base: string,
  opts: { method?: string; path: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; chunked?: boolean },
): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, method: opts.method ?? 'POST', path: opts.path, headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.chunked && opts.body !== undefined) {
      const b = Buffer.from(opts.body);
      for (let i = 0; i < b.length; i += 512) req.write(b.subarray(i, i + 512));
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

/** POST JSON through fetch and read the answer. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
