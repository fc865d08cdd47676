import { Pool, errors as undiciErrors, util as undiciUtil, type Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.js';
import { DeadlineSweeper } from './deadlines.js';

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

  const deadlines = new DeadlineSweeper();

  return {
    send(origin, req) {
      if (closed) return Promise.reject(new GatewayError('UPSTREAM_UNREACHABLE', 'the proxy is shutting down'));
      return new Promise<UpstreamResponse>((resolve, reject) => {
        // undici's dispatch() with one handler that collects the answer once (no response
        // stream, no per-request listeners). One deadline for the whole attempt (connect,
        // headers, body), not an idle timer: undici's own timeouts restart on every chunk and
        // its connect timeout is fixed. The deadline lives on the shared sweeper.
        let abort: ((err?: Error) => void) | undefined;
        let settled = false;
        let status = 0;
        let headers: Record<string, string | string[]> = {};
        const chunks: Buffer[] = [];
        let size = 0;
        const finish = (err?: Error) => {
          if (settled) return;
          settled = true;
          deadlines.clear(deadline);
          if (err) reject(toGatewayError(err, origin, req.timeoutMs));
          else resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
        };
        const deadline = deadlines.add(req.timeoutMs, () => {
          const timedOut = Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' });
          abort?.(timedOut);
          finish(timedOut);
        });
        const handler: Dispatcher.DispatchHandler = {
          onConnect(a) {
            abort = a;
            if (settled) a(new Error('deadline'));
          },
          onHeaders(statusCode, rawHeaders) {
            if (statusCode < 200) return true; // 1xx: the real answer follows
            status = statusCode;
            headers = undiciUtil.parseHeaders(rawHeaders);
            return true;
          },
          onData(chunk) {
            chunks.push(chunk);
            size += chunk.length;
            return true;
          },
          onComplete() {
            finish();
          },
          onError(err) {
            finish(err);
          },
        };
        try {
          poolFor(origin).dispatch(
            {
              method: req.method as 'GET',
              path: req.path,
              headers: req.headers,
              body: req.body ?? null,
              headersTimeout: req.timeoutMs,
              bodyTimeout: req.timeoutMs,
            },
            handler,
          );
        } catch (err) {
          finish(err as Error);
        }
      });
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
