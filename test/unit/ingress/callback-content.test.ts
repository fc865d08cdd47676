import test from 'ava';
import { actionMismatch, canonicalNumber, envelopeCollision, signedContentDigest } from '../../../src/ingress/callback-content.js';
import { parseJsonText, type JsonObjectNode } from '../../../src/provider/steps/json-text.js';

const obj = (text: string) => parseJsonText(text) as JsonObjectNode;

test('canonical numbers: one decimal value, one text; int64 ids stay distinct', (t) => {
  t.is(canonicalNumber('12.50'), '12.5');
  t.is(canonicalNumber('12.5'), '12.5');
  t.is(canonicalNumber('1250e-2'), '12.5');
  t.is(canonicalNumber('0.10'), '0.1');
  t.is(canonicalNumber('-0'), '0');
  t.is(canonicalNumber('100'), '100');
  t.is(canonicalNumber('1E+2'), '100');
  t.is(canonicalNumber('007'), '7');
  t.not(canonicalNumber('9007199254740993'), canonicalNumber('9007199254740992'));
});

test('the signed-content digest ignores serialisation, nulls and key order, not facts', (t) => {
  const a = signedContentDigest(obj('{"card_no":"C1","amount":12.50,"merchant_info":{"city":"HK","country":"HK"},"remark":null}'));
  t.is(signedContentDigest(obj('{"amount":12.5,"card_no":"C1","merchant_info":{"country":"HK","city":"HK"}}')), a);
  t.not(signedContentDigest(obj('{"card_no":"C1","amount":12.51,"merchant_info":{"city":"HK","country":"HK"}}')), a);
  t.not(signedContentDigest(obj('{"card_no":"C1","amount":"12.5","merchant_info":{"city":"HK","country":"HK"}}')), a, 'a string is not a number');
});

test('data fields named like the signed envelope are found', (t) => {
  t.is(envelopeCollision(obj('{"card_no":"C1","timestamp":"1"}')), 'timestamp');
  t.is(envelopeCollision(obj('{"appId":null}')), 'appId');
  t.is(envelopeCollision(obj('{"card_no":"C1","time":1}')), undefined);
});

test('an action is believed only for data of its shape (docs/protocols.md 2.5)', (t) => {
  const auth = obj('{"consume_no":"CS1","card_no":"C1","amount":1.00,"status":"Pending","time":1}');
  const consumption = obj('{"consume_no":"CS1","card_no":"C1","amount":1.00,"fee":0.1,"fee_detail":[],"status":"Success","time":1}');
  const cardUpdate = obj('{"card_no":"C1","before_status":"Activated","after_status":"Frozen","reason":"r","time":1}');
  t.is(actionMismatch('Auth', auth), undefined);
  t.is(actionMismatch('Consumption', consumption), undefined);
  t.is(actionMismatch('Consumption', auth), undefined, "an Auth's fields are a Consumption's too (dedupe catches that relabel)");
  t.is(actionMismatch('Card_update', cardUpdate), undefined);
  t.regex(actionMismatch('Auth', consumption) ?? '', /fee, fee_detail/);
  t.regex(actionMismatch('Auth', obj('{"consume_no":"CS1","card_no":"C1","status":"Success"}')) ?? '', /Pending/);
  t.regex(actionMismatch('Auth', cardUpdate) ?? '', /consume_no/);
  t.regex(actionMismatch('Card_update', auth) ?? '', /after_status/);
  t.regex(actionMismatch('Consumption', cardUpdate) ?? '', /consume_no/);
  t.is(actionMismatch('Auth', obj('{"consume_no":"CS1","card_no":"C1","new_field":1}')), undefined, 'fields the docs do not list are tolerated');
  t.is(actionMismatch('Refund', cardUpdate), undefined, 'an undocumented action has no shape to check');
});
