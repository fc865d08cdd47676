import { Agent, request } from 'undici';

/**
 * POSTs a push to an internal target: the upstream's body byte for byte, Countersign's headers,
 * one deadline for the whole exchange. Never throws: the outcome says what happened.
 */
export interface DeliveryOutcome {
  url: string;
  /** A 2xx answer arrived in time. */
  ok: boolean;
  status?: number;
  body?: Buffer;
  /** No answer within the deadline. */
  timedOut: boolean;
  /** Why it failed, for the log (no body, no secret). */
  error?: string;
}

export interface Deliverer {
  post(url: string, body: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}

/** Targets answer with small bodies; anything larger is cut here. */
const MAX_ANSWER_BYTES = 64 * 1024;

export function createDeliverer(): Deliverer {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  return {
    async post(url, body, headers, timeoutMs) {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const res = await request(url, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
          dispatcher: agent,
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
        }
        const ok = res.statusCode >= 200 && res.statusCode < 300;
        return { url, ok, status: res.statusCode, body: Buffer.concat(chunks), timedOut: false, ...(!ok && { error: `HTTP ${res.statusCode}` }) };
      } catch (err) {
        const timedOut = signal.aborted;
        const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
        return { url, ok: false, timedOut, error: timedOut ? `no answer within ${timeoutMs} ms` : `cannot reach the target (${code ?? 'connection failed'})` };
      }
    },
    close: () => agent.close(),
  };
}
