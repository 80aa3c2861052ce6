/**
 * Seeded generators in [0, 1), for runs that must replay the same way from a seed (the demo's
 * trades, the simulator's faults, test and bench fixtures). Never for anything secret.
 * Two algorithms, because seeded sessions recorded with each (the bench ledger and its state
 * hash, the e2e trade sequence, the fault schedules) must keep their sequences.
 */

/** mulberry32. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** A linear congruential generator (Numerical Recipes' constants); seed 0 counts as 1. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}
