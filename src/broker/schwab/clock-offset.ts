/**
 * How far Schwab's clock runs from ours, read from the Date header of its answers. Reconciliation
 * matches Schwab's entry times against intents recorded on our clock: apart by more than
 * LEDGER_RECONCILE_SKEW_MS, it would miss our own order and place it again. So its search
 * widens by the offset seen, on the side the offset points to.
 */
import type { Logger } from '../../log.ts';

/** Date has whole seconds and the answer spent time in flight: a smaller difference says nothing. */
export const CLOCK_NOISE_MS = 2_000;

export class ClockOffset {
  /** Schwab's clock minus ours, 0 within the noise. */
  private aheadMs = 0;

  constructor(private readonly now: () => Date, private readonly log: Logger) {}

  /** Notes the Date of an answer just received (undefined: it had none). */
  observe(serverDate: number | undefined): void {
    if (serverDate === undefined) return;
    const ahead = serverDate - this.now().getTime();
    const was = this.aheadMs;
    this.aheadMs = Math.abs(ahead) > CLOCK_NOISE_MS ? ahead : 0;
    if (this.aheadMs === 0 || Math.abs(this.aheadMs - was) <= CLOCK_NOISE_MS) return;
    const seconds = Math.round(Math.abs(ahead) / 1000);
    this.log.warn({ schwabAheadMs: ahead }, `this host's clock is ${seconds} s ${ahead > 0 ? 'behind' : 'ahead of'} Schwab's (its Date header): reconciliation widens its search by that much; set this host's time right (NTP)`);
  }

  /** How much earlier than our clock says an order may show as entered at Schwab. */
  get earlierMs(): number {
    return this.aheadMs < 0 ? CLOCK_NOISE_MS - this.aheadMs : 0;
  }

  /** How much later than our clock says an order may show as entered at Schwab. */
  get laterMs(): number {
    return this.aheadMs > 0 ? this.aheadMs + CLOCK_NOISE_MS : 0;
  }
}
