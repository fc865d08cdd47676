import { Pool, errors as undiciErrors } from 'undici';
import { GatewayError } from '../errors.js';

/**
 * The one place that talks HTTP to upstreams. Everything above it deals in UpstreamRequest /
 * UpstreamResponse, so the transport can be swapped without touching signing or retries.
 *
 * Why undici's Pool and not http-proxy: the proxy must see the whole upstream answer anyway
 * (to classify it by error code and to decide on the one transparent retry), so streaming
 * pass-through buys nothing, and undici's pooled keep-alive client is the fastest HTTP/1.1
 * client Node has (README "Forwarding" has the measurements).
 */
export interface UpstreamRequest {
  method: string;
  /** Full path on the origin, base path and query included. */
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer | string;
  timeoutMs: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface Forwarder {
  send(origin: string, req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface ForwarderOptions {
  /** Max sockets per upstream origin. */
  connections?: number;
  keepAliveTimeoutMs?: number;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

export function createForwarder(options: ForwarderOptions = {}): Forwarder {
  const pools = new Map<string, Pool>();
  let closed = false;
  const poolFor = (origin: string) => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: options.connections ?? 128,
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
        pipelining: 1,
      });
      pools.set(origin, pool);
    }
    return pool;
  };

  return {
    async send(origin, req) {
      if (closed) throw new GatewayError('UPSTREAM_UNREACHABLE', 'the proxy is shutting down');
      // One deadline for the whole attempt (connect, headers, body), not an idle timer:
      // undici's own timeouts restart on every chunk and its connect timeout is fixed.
      const signal = AbortSignal.timeout(req.timeoutMs);
      try {
        const res = await poolFor(origin).request({
          method: req.method as 'GET',
          path: req.path,
          headers: req.headers,
          body: req.body ?? null,
          signal,
          headersTimeout: req.timeoutMs,
          bodyTimeout: req.timeoutMs,
        });
        const body = Buffer.from(await res.body.arrayBuffer());
        return { status: res.statusCode, headers: res.headers, body };
      } catch (err) {
        throw toGatewayError(signal.aborted ? Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' }) : err, origin, req.timeoutMs);
      }
    },
    async close() {
      closed = true;
      await Promise.all([...pools.values()].map((p) => p.close()));
      pools.clear();
    },
  };
}

function toGatewayError(err: unknown, origin: string, timeoutMs: number): GatewayError {
  const code = (err as { code?: string }).code ?? '';
  if (TIMEOUT_CODES.has(code) || err instanceof undiciErrors.HeadersTimeoutError) {
    return new GatewayError('UPSTREAM_TIMEOUT', `no answer from ${origin} within ${timeoutMs} ms`, { cause: err });
  }
  const cause = (err as { cause?: { code?: string } }).cause?.code;
  return new GatewayError('UPSTREAM_UNREACHABLE', `cannot reach ${origin} (${code || cause || 'connection failed'})`, { cause: err });
}
