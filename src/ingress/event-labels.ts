/**
 * Bounded `event` labels: documented ids and actions as they are, anything else `other`
 * (docs/protocols.md 1.9, 2.5). Event ids come from outside: they must not grow the label set.
 */
const KEETA_EVENTS = new Set([1, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1101, 1102, 1201, 1202, 1301, 1302, 1303]);
const KEYSECURE_ACTIONS = new Set(['Auth', 'Consumption', 'Card_update']);

export function keetaEventLabel(eventId: string | undefined, extra: ReadonlySet<number> = new Set()): string {
  if (eventId === undefined || !/^\d{1,9}$/.test(eventId)) return 'other';
  const n = Number(eventId);
  return KEETA_EVENTS.has(n) || extra.has(n) ? String(n) : 'other';
}

export function keysecureActionLabel(action: string | undefined): string {
  return action !== undefined && KEYSECURE_ACTIONS.has(action) ? action : 'other';
}
