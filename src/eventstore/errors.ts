/**
 * Typed store errors; adapters translate their client's errors into these. Callers tell them apart
 * with `instanceof`; `kind` names the error where it is shown (the CLI's one-line failure) or matched as data (tests).
 */

export type StoreError = WrongExpectedVersion | StreamNotFound | StoreUnavailable | CorruptEvent | StoreConfigError;

const show = (r: unknown): string => (typeof r === 'bigint' ? r.toString() : String(r));

/** Another writer got there first, or the same revision holds different event ids. */
export class WrongExpectedVersion extends Error {
  override readonly name = 'WrongExpectedVersion';
  readonly kind = 'WrongExpectedVersion' as const;
  constructor(
    readonly stream: string,
    readonly expected: bigint | 'no_stream' | 'any',
    /** Revision of the stream's last event, or 'no_stream'. */
    readonly actual: bigint | 'no_stream',
  ) {
    super(`wrong expected version on ${stream}: expected ${show(expected)}, actual ${show(actual)}`);
  }
}

export class StreamNotFound extends Error {
  override readonly name = 'StreamNotFound';
  readonly kind = 'StreamNotFound' as const;
  constructor(readonly stream: string) {
    super(`stream not found: ${stream}`);
  }
}

/** Transient: the store is locked, unreachable or busy. Retry with backoff. */
export class StoreUnavailable extends Error {
  override readonly name = 'StoreUnavailable';
  readonly kind = 'StoreUnavailable' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A stored event that cannot be read or decoded: names the stream, revision and the failing path. */
export class CorruptEvent extends Error {
  override readonly name = 'CorruptEvent';
  readonly kind = 'CorruptEvent' as const;
  constructor(
    readonly stream: string,
    readonly revision: bigint,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`corrupt event ${stream}@${revision} at ${path || '<root>'}: ${reason}`);
  }
}

/** Not transient: a bad store URL, a file from a newer schema version, a permission problem. */
export class StoreConfigError extends Error {
  override readonly name = 'StoreConfigError';
  readonly kind = 'StoreConfigError' as const;
}

export const isStoreError = (e: unknown): e is StoreError =>
  e instanceof WrongExpectedVersion || e instanceof StreamNotFound || e instanceof StoreUnavailable ||
  e instanceof CorruptEvent || e instanceof StoreConfigError;
