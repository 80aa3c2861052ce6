/**
 * What becomes of stdout. A reader that went away (`… | head`) or a failed write (a full disk) ends
 * the output: `outputClosed` tells the commands whose only product is output that they may stop,
 * and `outputFailure` is the failure worth reporting (a reader going away is not one). On Linux a
 * pipe takes writes asynchronously: whatever a slow reader has not read yet waits in memory, so a
 * long listing writes with `writeOutput` and waits for `outputDrained` before making more.
 */
import { once } from 'node:events';

const closed = new AbortController();
let failure: NodeJS.ErrnoException | undefined;
let draining: Promise<void> | undefined;

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') failure ??= e;
  closed.abort();
});

/** Aborted once a write to stdout has failed: nothing written after it is read. */
export const outputClosed: AbortSignal = closed.signal;

/** The first write failure other than a reader going away, if any. */
export const outputFailure = (): NodeJS.ErrnoException | undefined => failure;

/** Writes to stdout; past its buffer's limit, `outputDrained` has something to wait for. */
export function writeOutput(text: string): void {
  if (process.stdout.write(text) || draining !== undefined || outputClosed.aborted) return;
  const drained = () => {
    draining = undefined;
  };
  // Rejected when the output closes meanwhile: then nothing is left to wait for either.
  draining = once(process.stdout, 'drain', { signal: outputClosed }).then(drained, drained);
}

/** Settles once stdout has taken what it was given (or has closed); undefined when nothing is waiting. */
export const outputDrained = (): Promise<void> | undefined => draining;
