import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../core/errors.js';

const closedEarly = (cause?: unknown) =>
  new GatewayError('CLIENT_CLOSED', 'the caller closed the connection before sending its whole body', cause === undefined ? undefined : { cause });

/**
 * Read the whole request body, refusing more than `limit` bytes: at once from Content-Length,
 * else as soon as the stream passes the limit (the rest is drained unread). Returns one Buffer.
 * Plain 'data'/'end' listeners: an async iterator costs several promises per chunk.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new GatewayError('BODY_TOO_LARGE', `the body exceeds limits.maxBodyBytes (${limit} bytes)`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done();
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      if (req.readableAborted) reject(closedEarly());
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      done();
      reject(closedEarly(err));
    };
    // Closed without 'end' (and without an error): the caller went away mid-body.
    const onClose = () => {
      done();
      reject(closedEarly());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
