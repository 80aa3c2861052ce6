/** A fingerprint of the folded read models: the same log always gives the same hash. */
import { createHash } from 'node:crypto';
import type { LedgerView } from '../../projections/ledger.ts';
import { hedgesJson, positionsJson } from '../../projections/queries.ts';

export function stateHash(view: LedgerView): string {
  // By code unit (the keys are distinct): localeCompare would make the hash depend on the locale.
  const rejected = Object.fromEntries([...view.rejectedByReason.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  const canonical = JSON.stringify({ events: view.events, positions: positionsJson(view), hedges: hedgesJson(view), rejected });
  return createHash('sha256').update(canonical).digest('hex');
}
