/**
 * Sending pushes (webhooks, callbacks, Event 1) from a simulator to a receiver, and reporting
 * every answer. Uses node:http directly so a test controls everything the receiver sees: the
 * exact body bytes, every header (X-Forwarded-For included) and the local source address.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** One answer from the receiver (or the transport error that replaced it). */
export interface PushAnswer {
  /** HTTP status; 0 when the request failed before an answer (see `error`). */
  status: number;
  /** The answer body as text ('' on error). */
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  /** Wall-clock milliseconds from sending the request to the end of the answer. */
  ms: number;
  /** Transport error (connection refused, timeout...), when there was no answer. */
  error?: string;
}

export interface PushRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Sent as UTF-8; ignored for GET. */
  body?: string;
  /** Bind the local end of the connection to this address (e.g. 127.0.0.2). */
  sourceAddress?: string;
  /** Give up on an answer after this long. Default 10 s. */
  timeoutMs?: number;
}

/** Transport options every push accepts. */
export interface PushTransportOptions {
  /** Extra request headers (e.g. `{"x-forwarded-for": "43.135.86.188"}`); they override the usual ones. */
  headers?: Record<string, string>;
  /** Local address to send from (any 127.x.y.z works on Linux loopback). */
  sourceAddress?: string;
  /** Send this many identical copies at once (concurrently). Default 1. */
  copies?: number;
  /** Per-request answer timeout. Default 10 s. */
  timeoutMs?: number;
}

export function checkTransportOptions(what: string, opts: PushTransportOptions): number {
  const copies = opts.copies ?? 1;
  if (!Number.isInteger(copies) || copies < 1 || copies > 1000) throw new TypeError(`${what}: copies must be an integer 1..1000`);
  if (opts.headers !== undefined) {
    if (typeof opts.headers !== 'object' || opts.headers === null || Array.isArray(opts.headers)) throw new TypeError(`${what}: headers must be an object`);
    for (const [k, v] of Object.entries(opts.headers)) {
      if (typeof v !== 'string') throw new TypeError(`${what}: header ${k} must be a string`);
    }
  }
  if (opts.sourceAddress !== undefined && typeof opts.sourceAddress !== 'string') throw new TypeError(`${what}: sourceAddress must be a string`);
  if (opts.timeoutMs !== undefined && (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0)) throw new TypeError(`${what}: timeoutMs must be > 0`);
  return copies;
}

export function checkTargetUrl(what: string, url: unknown): URL {
  if (typeof url !== 'string') throw new TypeError(`${what}: url is required`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`${what}: url ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`${what}: url must be http(s)`);
  return parsed;
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Sends one request and resolves with its answer; never rejects. */
export function sendPush(req: PushRequest): Promise<PushAnswer> {
  const url = new URL(req.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const body = req.method === 'GET' || req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
  const headers: Record<string, string | number> = { ...req.headers };
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = body.length;
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: Omit<PushAnswer, 'ms'>): void => {
      if (settled) return;
      settled = true;
      resolve({ ...answer, ms: Math.round((performance.now() - started) * 10) / 10 });
    };
    const r = send(
      url,
      {
        method: req.method,
        headers,
        agent: false,
        ...(req.sourceAddress !== undefined ? { localAddress: req.sourceAddress } : {}),
        timeout: req.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          finish({ status: res.statusCode ?? 0, body: text, json: parseJsonOrUndefined(text) });
        });
        res.on('error', (err) => finish({ status: 0, body: '', json: undefined, error: err.message }));
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${req.timeoutMs ?? 10_000} ms`)));
    r.on('error', (err) => finish({ status: 0, body: '', json: undefined, error: err.message }));
    r.end(body);
  });
}

/** Sends `copies` identical requests at once; answers in sending order. */
export function sendCopies(req: PushRequest, copies: number): Promise<PushAnswer[]> {
  return Promise.all(Array.from({ length: copies }, () => sendPush(req)));
}

/** The request headers with the caller's extra headers laid over them (names compared case-insensitively). */
export function withExtraHeaders(base: Record<string, string>, extra: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const lower = new Set(Object.keys(extra ?? {}).map((k) => k.toLowerCase()));
  for (const [k, v] of Object.entries(base)) if (!lower.has(k.toLowerCase())) out[k] = v;
  return { ...out, ...(extra ?? {}) };
}
