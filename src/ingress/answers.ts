import type { Context } from 'koa';

/**
 * Answers in each upstream's own format. Keeta wants `{"code":0,"message":"Success"}` and reads
 * any other code as a failure (and retries); KeySecure wants `{"code":0,"message":""}`. Failures
 * carry the HTTP status as their code, so logs and the upstream's console agree.
 */
export function keetaAnswer(ctx: Context, status: number, message?: string): void {
  ctx.status = status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = JSON.stringify(status === 200 ? { code: 0, message: 'Success' } : { code: status, message: message ?? 'failed' });
}

export function keysecureAnswer(ctx: Context, status: number, code: number, message: string): void {
  ctx.status = status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = JSON.stringify({ code, message });
}

/** SPEC's own error format, for requests that name no upstream. */
export function gatewayErrorAnswer(ctx: Context, status: number, code: string, message: string, requestId: string): void {
  ctx.status = status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = JSON.stringify({ error: { code, message, requestId } });
}
