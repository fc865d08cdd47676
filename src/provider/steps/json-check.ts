import { GatewayError } from '../../core/errors.js';
import { decodeUtf8 } from '../../proxy/upstream.js';

/**
 * Named step `json-check` (recipe `body: {check: json}`): the body is forwarded byte for byte,
 * so an int64 or a `\u` escape arrives exactly as the caller wrote it, but a non-empty body that
 * is not UTF-8 JSON is refused before it is sent (KeySecure, docs/protocols.md 2.x).
 */
export function checkJsonBody(body: Buffer): void {
  if (body.length === 0) return;
  const text = decodeUtf8(body);
  if (text === undefined) throw new GatewayError('BAD_JSON', 'the body is not valid UTF-8');
  try {
    JSON.parse(text);
  } catch (err) {
    throw new GatewayError('BAD_JSON', `the body is not valid JSON: ${(err as Error).message.slice(0, 120)}`);
  }
}
