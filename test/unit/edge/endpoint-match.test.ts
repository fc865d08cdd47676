import test from 'ava';
import { reachesEndpoint } from '../../../src/edge/endpoint-match.js';

const KEETA = '/base/oauth/token';
const KEYSECURE = '/open-api/v1/merchant/token';

test('a token endpoint is matched with whatever a lenient server ignores after its name', (t) => {
  for (const p of [KEETA, '/base/oauth/token/', '/base/oauth/token.', '/base/oauth/token.json', '/BASE/OAuth/TOKEN', '/base/oauth/token~', '/base/oauth/token-', '/base/oauth/token_', '/base/oauth/token/x']) {
    t.true(reachesEndpoint(p, KEETA), p);
  }
  for (const p of [KEYSECURE, '/open-api/v1/merchant/token.xml', '/open-api/v1/merchant/Token/']) t.true(reachesEndpoint(p, KEYSECURE), p);
});

test('other endpoints are not the token endpoint', (t) => {
  for (const p of ['/base/oauth/tokens', '/base/oauth/tokenx', '/base/oauth', '/base/oauth/toke', '/order/get', '/base/oauth/t0ken']) t.false(reachesEndpoint(p, KEETA), p);
});
