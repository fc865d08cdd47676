import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

/**
 * Read the whole request body, refusing more than `limit` bytes: at once from Content-Length,
 * else as soon as the stream passes the limit. Returns one Buffer.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new GatewayError('BODY_TOO_LARGE', `the body exceeds limits.maxBodyBytes (${limit} bytes)`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        req.resume();
        throw tooLarge();
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('CLIENT_CLOSED', 'the caller closed the connection before sending its whole body', { cause: err });
  }
  if (req.readableAborted) throw new GatewayError('CLIENT_CLOSED', 'the caller closed the connection before sending its whole body');
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
