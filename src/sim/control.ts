/**
 * State shared by both simulators' control surfaces: the simulated clock, injected latency,
 * injected failures and the log of every request received.
 */

/** How the next business requests fail (see `failNext`). */
export interface FailNextOptions {
  /** Envelope code to answer (HTTP 200). Default: the simulator's server-error code. */
  code?: number;
  /** Envelope message. Default: that code's usual message. */
  message?: string;
  /** Answer this raw HTTP status instead of an envelope. */
  httpStatus?: number;
  /** Raw body for `httpStatus` answers: a string as-is, anything else as JSON. Default empty. */
  body?: unknown;
  /** Also fail requests to the token endpoint (default: token calls are not affected). */
  includeTokenEndpoint?: boolean;
}

/** One request as the simulator received it. */
export interface RecordedRequest {
  method: string;
  /** Path including the query string, exactly as received. */
  path: string;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  rawBody: string;
  /** Envelope code answered, or the HTTP status when the answer was a raw HTTP error. */
  code: number;
  /** Simulated-clock time (Unix ms) when the request was received. */
  at: number;
}

export class SimCore {
  #offsetMs = 0;
  #latencyMs = 0;
  #failures: Array<{ remaining: number; options: FailNextOptions }> = [];
  #requests: RecordedRequest[] = [];

  /** Simulated time: real time + offset (Unix ms). */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  get clockOffsetMs(): number {
    return this.#offsetMs;
  }

  get latencyMs(): number {
    return this.#latencyMs;
  }

  setClockOffset(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new TypeError('setClockOffset: ms must be a finite number');
    this.#offsetMs = Math.trunc(ms);
  }

  setLatency(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new TypeError('setLatency: ms must be a number >= 0');
    this.#latencyMs = ms;
  }

  /** The next `count` business requests fail as described. Replaces any pending failure; 0 clears it. */
  failNext(count: number, options: FailNextOptions = {}): void {
    if (!Number.isInteger(count) || count < 0) throw new TypeError('failNext: count must be an integer >= 0');
    checkFailure('failNext', options);
    this.#failures = count === 0 ? [] : [{ remaining: count, options: { ...options } }];
  }

  /**
   * The next business requests fail one after another as listed (one request each), e.g. a
   * token rejection and then a timestamp rejection. Replaces any pending failure; [] clears it.
   */
  failSequence(faults: readonly FailNextOptions[]): void {
    if (!Array.isArray(faults)) throw new TypeError('failSequence: faults must be an array');
    faults.forEach((f, i) => checkFailure(`failSequence[${i}]`, f));
    this.#failures = faults.map((f) => ({ remaining: 1, options: { ...f } }));
  }

  /** Consumes one pending failure if it applies to this request. */
  takeFailure(isTokenEndpoint: boolean): FailNextOptions | undefined {
    const f = this.#failures[0];
    if (!f) return undefined;
    if (isTokenEndpoint && !f.options.includeTokenEndpoint) return undefined;
    f.remaining--;
    if (f.remaining <= 0) this.#failures.shift();
    return f.options;
  }

  get pendingFailures(): number {
    return this.#failures.reduce((n, f) => n + f.remaining, 0);
  }

  record(request: RecordedRequest): void {
    this.#requests.push(request);
  }

  /** A copy of the request log, oldest first. */
  requests(): RecordedRequest[] {
    return this.#requests.map((r) => ({ ...r, headers: { ...r.headers } }));
  }

  /** Clears the request log, pending failures are kept (use failNext(0) to clear them). */
  clearRequests(): void {
    this.#requests = [];
  }
}

function checkFailure(where: string, options: FailNextOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: expected an options object`);
  if (options.httpStatus !== undefined && (!Number.isInteger(options.httpStatus) || options.httpStatus < 100 || options.httpStatus > 599)) {
    throw new TypeError(`${where}: httpStatus must be an integer 100..599`);
  }
  if (options.code !== undefined && !Number.isInteger(options.code)) throw new TypeError(`${where}: code must be an integer`);
  if (options.message !== undefined && typeof options.message !== 'string') throw new TypeError(`${where}: message must be a string`);
}

/** Thrown by control operations; over HTTP it becomes that status with `{error}`. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}
