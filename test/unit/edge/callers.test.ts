import test from 'ava';
import { createCallerAuthenticator } from '../../../src/edge/callers.js';
import { isGatewayError } from '../../../src/core/errors.js';

const callers = createCallerAuthenticator([
  { name: 'orders', token: 'orders-token-0123456789', allow: ['keeta:/order/*'] },
  { name: 'cards', token: 'cards-token-0123456789abcdef', allow: ['ks:*'] },
  { name: 'unicode', token: 'tøken-✓-0123456789', allow: ['*:*'] },
]);

const refusal = (header: string | undefined) => {
  try {
    callers.authenticate(header);
  } catch (err) {
    return isGatewayError(err) ? err.code : 'other';
  }
  return 'accepted';
};

test('each caller is found by its own token, whatever the other tokens\' lengths', (t) => {
  t.is(callers.authenticate('Bearer orders-token-0123456789')?.name, 'orders');
  t.is(callers.authenticate('Bearer cards-token-0123456789abcdef')?.name, 'cards');
  t.is(callers.authenticate('bearer   tøken-✓-0123456789 ')?.name, 'unicode');
});

test('a prefix, an extension, a one-character change or another length of a token is refused', (t) => {
  for (const token of ['orders-token-012345678', 'orders-token-01234567890', 'orders-token-0123456788', 'Orders-token-0123456789', 'x', 'cards-token-0123456789abcde', 'tøken-✓-012345678']) {
    t.is(refusal(`Bearer ${token}`), 'CALLER_UNAUTHENTICATED', token);
  }
  t.is(refusal(undefined), 'CALLER_UNAUTHENTICATED');
  t.is(refusal('Basic b3JkZXJz'), 'CALLER_UNAUTHENTICATED');
  t.is(refusal('Bearer orders-token-0123456789 extra'), 'CALLER_UNAUTHENTICATED');
});

test('the allow list is checked after the token', (t) => {
  const orders = callers.authenticate('Bearer orders-token-0123456789');
  t.notThrows(() => callers.authorize(orders, 'keeta', '/order/get'));
  t.throws(() => callers.authorize(orders, 'ks', '/open-api/v1/card/list'), { message: /not allowed/ });
});
