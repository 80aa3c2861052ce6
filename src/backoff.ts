/** Exponential backoff with jitter: between half and all of min·2^attempt, capped at max; at least `floor` (e.g. a Retry-After). */
export function backoffDelay(attempt: number, bounds: { readonly min: number; readonly max: number }, floor = 0): number {
  const cap = Math.min(bounds.max, bounds.min * 2 ** Math.min(attempt, 30));
  return Math.max(floor, cap / 2 + (Math.random() * cap) / 2);
}
