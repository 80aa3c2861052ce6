/**
 * Telling a caught-up subscription from a busy one: the subscription port has no "caught up"
 * signal, so a consumer learns it from the wait. One timer serves every wait (re-armed, never
 * re-created), so a catch-up pays little for it (~0.35 µs per event).
 */

/** Yielded between events when the next one kept the reader waiting: everything delivered so far is handled. */
export const LULL = Symbol('lull');

/**
 * The events of `events`, in order, with LULL once in every wait longer than `ms`. The caller
 * closes the subscription (ending the iteration leaves it open: a read may still be pending).
 */
export async function* withLulls<T>(events: AsyncIterable<T>, ms: number): AsyncGenerator<T | typeof LULL, void, undefined> {
  const iterator = events[Symbol.asyncIterator]();
  let wake: ((lull: typeof LULL) => void) | undefined;
  const timer = setTimeout(() => wake?.(LULL), ms).unref();
  try {
    for (;;) {
      const next = iterator.next();
      timer.refresh();
      let result = await new Promise<IteratorResult<T> | typeof LULL>((resolve, reject) => {
        wake = resolve;
        next.then(resolve, reject);
      });
      if (result === LULL) {
        yield LULL;
        result = await next;
      }
      if (result.done) return;
      yield result.value;
    }
  } finally {
    clearTimeout(timer);
  }
}
