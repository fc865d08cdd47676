import { errors as undiciErrors, util as undiciUtil, type Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.js';
import { DeadlineSweeper, type Deadline } from './deadlines.js';
import { createUpstreamDispatcher, type UpstreamTransport } from './upstream-transport.js';

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
  /**
   * Business calls: one deadline for the whole attempt (waiting for a socket, connecting,
   * answering). Token calls: a bound on getting a socket, then a new deadline of the same
   * length from the moment the request is written.
   */
  timeoutMs: number;
  /**
   * `token`: a token call (renewal, refresh, code exchange). It rides connections of its own,
   * so it never queues behind business traffic on a full pool.
   */
  lane?: 'token';
  /** Largest answer held in memory; a longer one is UPSTREAM_RESPONSE_TOO_LARGE. Default: no bound. */
  maxResponseBytes?: number;
}

/**
 * A failed upstream call, saying whether the request was written to the upstream. One that
 * was not sent has certainly not been executed; one that was may have been (a refresh whose
 * answer was lost: the refresh token may be spent).
 */
export class UpstreamCallError extends GatewayError {
  constructor(
    code: 'UPSTREAM_TIMEOUT' | 'UPSTREAM_UNREACHABLE' | 'UPSTREAM_RESPONSE_TOO_LARGE',
    message: string,
    readonly sent: boolean,
    cause?: unknown,
  ) {
    super(code, message, { cause });
  }
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
  /**
   * Max sockets per upstream origin for business calls. Default: no bound here; the proxy
   * admits at most each upstream's `connections` at a time (fair-share.ts), so a request
   * never waits inside undici, where its wait could neither be seen nor be fair.
   */
  connections?: number;
  /** Max sockets per origin for token calls (their own pool). */
  tokenConnections?: number;
  keepAliveTimeoutMs?: number;
  /** Per origin: CA, client certificate, server name, egress proxy (upstream-transport.ts). */
  transports?: ReadonlyMap<string, UpstreamTransport>;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

export function createForwarder(options: ForwarderOptions = {}): Forwarder {
  const pools = new Map<string, Dispatcher>();
  const tokenPools = new Map<string, Dispatcher>();
  /** Origins dispatched through an egress proxy: its agent needs the origin in each dispatch. */
  const proxied = new Set<string>();
  let closed = false;
  const poolFor = (origin: string, lane: 'token' | undefined) => {
    const map = lane === 'token' ? tokenPools : pools;
    let pool = map.get(origin);
    if (!pool) {
      const transport = options.transports?.get(origin);
      pool = createUpstreamDispatcher(origin, transport, {
        connections: lane === 'token' ? (options.tokenConnections ?? 8) : (options.connections ?? null),
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      });
      if (transport?.egressProxy) proxied.add(origin);
      map.set(origin, pool);
    }
    return pool;
  };

  const deadlines = new DeadlineSweeper();

  return {
    send(origin, req) {
      if (closed) return Promise.reject(new GatewayError('UPSTREAM_UNREACHABLE', 'the proxy is shutting down'));
      return new Promise<UpstreamResponse>((resolve, reject) => {
        const attempt = new Attempt(origin, req, deadlines, resolve, reject);
        deadlines.arm(attempt, req.timeoutMs);
        try {
          poolFor(origin, req.lane).dispatch(
            {
              ...(proxied.has(origin) && { origin }),
              method: req.method as 'GET',
              path: req.path,
              headers: req.headers,
              body: req.body ?? null,
              headersTimeout: req.timeoutMs,
              bodyTimeout: req.timeoutMs,
            },
            attempt,
          );
        } catch (err) {
          attempt.finish(err as Error);
        }
      });
    },
    async close() {
      closed = true;
      await Promise.all([...pools.values(), ...tokenPools.values()].map((p) => p.close()));
      pools.clear();
      tokenPools.clear();
    },
  };
}

const NO_HEADERS: Record<string, string | string[]> = Object.freeze({}) as Record<string, string | string[]>;

/**
 * One upstream attempt: undici's dispatch handler (collecting the answer once: no response
 * stream, no per-request listeners) and its own entry on the shared deadline sweeper. One
 * object per attempt whose methods live on the prototype, where a handler of closures cost a
 * dozen allocations per request. One deadline for the whole attempt (connect, headers, body),
 * not an idle timer: undici's own timeouts restart on every chunk and its connect timeout is fixed.
 */
class Attempt implements Dispatcher.DispatchHandler, Deadline {
  at = 0;
  private abort: ((err?: Error) => void) | undefined = undefined;
  private settled = false;
  private status = 0;
  private headers = NO_HEADERS;
  /** The answer's body: most answers arrive in one chunk, kept without an array. */
  private first: Buffer | undefined = undefined;
  private more: Buffer[] | undefined = undefined;
  private size = 0;

  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly tokenLane: boolean;

  constructor(
    private readonly origin: string,
    req: UpstreamRequest,
    private readonly deadlines: DeadlineSweeper,
    private readonly resolve: (r: UpstreamResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.timeoutMs = req.timeoutMs;
    this.maxBytes = req.maxResponseBytes ?? Infinity;
    this.tokenLane = req.lane === 'token';
  }

  /** The deadline passed (called by the sweeper). */
  fire(): void {
    const timedOut = Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' });
    this.abort?.(timedOut);
    this.finish(timedOut);
  }

  finish(err?: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.deadlines.clear(this);
    if (err) this.reject(toGatewayError(err, this.origin, this.timeoutMs, this.abort !== undefined));
    else {
      const body = this.more ? Buffer.concat([this.first!, ...this.more], this.size) : (this.first ?? EMPTY_BODY);
      this.resolve({ status: this.status, headers: this.headers === NO_HEADERS ? {} : this.headers, body });
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.settled) abort(new Error('deadline'));
    else if (this.tokenLane) {
      // A token call's deadline starts when it is written, whatever it waited for before.
      this.deadlines.clear(this);
      this.deadlines.arm(this, this.timeoutMs);
    }
  }

  /** The answer is over maxResponseBytes: stop reading it. */
  private tooLarge(): boolean {
    const err = Object.assign(new Error('response too large'), { code: TOO_LARGE });
    this.abort?.(err);
    this.finish(err);
    return false;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx: the real answer follows
    this.status = statusCode;
    this.headers = undiciUtil.parseHeaders(rawHeaders) as Record<string, string | string[]>;
    const declared = this.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.maxBytes) return this.tooLarge();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.size + chunk.length > this.maxBytes) return this.tooLarge();
    if (this.first === undefined) this.first = chunk;
    else (this.more ??= []).push(chunk);
    this.size += chunk.length;
    return true;
  }

  onComplete(): void {
    this.finish();
  }

  onError(err: Error): void {
    this.finish(err);
  }
}

const EMPTY_BODY = Buffer.alloc(0);

const TOO_LARGE = 'COUNTERSIGN_RESPONSE_TOO_LARGE';

function toGatewayError(err: unknown, origin: string, timeoutMs: number, sent: boolean): UpstreamCallError {
  const code = (err as { code?: string }).code ?? '';
  if (code === TOO_LARGE) {
    return new UpstreamCallError('UPSTREAM_RESPONSE_TOO_LARGE', `the answer of ${origin} is larger than limits.maxResponseBytes`, sent, err);
  }
  if (TIMEOUT_CODES.has(code) || err instanceof undiciErrors.HeadersTimeoutError) {
    // Not sent: the request never got a socket (or its connection was never established).
    const message = sent ? `no answer from ${origin} within ${timeoutMs} ms` : `no connection free to ${origin} within ${timeoutMs} ms; the request was not sent`;
    return new UpstreamCallError('UPSTREAM_TIMEOUT', message, sent, err);
  }
  const cause = (err as { cause?: { code?: string } }).cause?.code;
  const refused = certificateProblem(err);
  if (refused) return new UpstreamCallError('UPSTREAM_UNREACHABLE', `certificate of ${origin} is not trusted: ${refused}`, sent, err);
  return new UpstreamCallError('UPSTREAM_UNREACHABLE', `cannot reach ${origin} (${code || cause || 'connection failed'})`, sent, err);
}

/** OpenSSL's and Node's codes for a certificate the client refused. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** "unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)" when err (or its cause) is a refused certificate. */
function certificateProblem(err: unknown): string | undefined {
  for (let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.code && CERTIFICATE_CODES.has(e.code)) return `${e.message ?? 'refused'} (${e.code})`;
  }
  return undefined;
}
