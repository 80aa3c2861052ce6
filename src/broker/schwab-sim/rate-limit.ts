/** Schwab's order-write limit: at most `limit` writes per sliding window, per app. */
export class SlidingWindowLimiter {
  private hits: number[] = [];
  private readonly limit: number;
  private readonly windowMs: number;

  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Records a write at `at`, or returns how many ms until one would be allowed. */
  tryHit(at: number): { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number } {
    this.hits = this.hits.filter((h) => h > at - this.windowMs);
    const oldest = this.hits[0];
    if (this.hits.length >= this.limit && oldest !== undefined) return { ok: false, retryAfterMs: oldest + this.windowMs - at };
    this.hits.push(at);
    return { ok: true };
  }
}
