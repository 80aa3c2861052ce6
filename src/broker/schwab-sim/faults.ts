/**
 * Fault injection per endpoint: the next N calls, or each call with a probability drawn
 * from a seeded PRNG (deterministic runs). `applied: true` runs the real handler first,
 * so the effect happens (an order is created, a cancel is accepted) and the client still
 * sees the failure: that is the ambiguous outcome an adapter must reconcile.
 */
import { gzipSync } from 'node:zlib';
import * as t from 'io-ts';
import { mulberry32 } from '../../seeded-random.ts';
import { NonNegativeInt, intAtLeast, withOptional } from './codecs.ts';
import type { Endpoint } from './model.ts';
import { emptyReply, schwabError, type Reply } from './reply.ts';

const HttpStatus = intAtLeast(100, 'HttpStatus');
const Applied = { applied: t.boolean };

export const Fault = t.union([
  /** An error status (401, 429, 500, 503 …) with Schwab's JSON error body; Retry-After only when given. */
  withOptional({ kind: t.literal('status'), status: HttpStatus }, { retryAfterSeconds: NonNegativeInt, ...Applied }),
  /** The edge's HTML "Access Denied" page (default 403). */
  withOptional({ kind: t.literal('html') }, { status: HttpStatus, ...Applied }),
  /** A gzip-encoded JSON error (default 500) with Content-Encoding: gzip. */
  withOptional({ kind: t.literal('gzip') }, { status: HttpStatus, ...Applied }),
  /**
   * Never answers; the connection stays open until the client gives up or the sim stops. With
   * appliedAfterMs, the handler runs that long after the request arrived: a request Schwab acts on
   * after the client gave up, so its order shows in the orders list only then.
   */
  withOptional({ kind: t.literal('timeout') }, { ...Applied, appliedAfterMs: NonNegativeInt }),
  /** Destroys the socket without a response. With applied: true on place, the ambiguous POST. */
  withOptional({ kind: t.literal('drop') }, Applied),
  /** The handler runs and its answer goes out without the Location header (201 without Location). */
  t.type({ kind: t.literal('noLocation') }),
]);
export type Fault = t.TypeOf<typeof Fault>;
/** The faults that send a response (timeout and drop never do). */
export type AnsweringFault = Exclude<Fault, { kind: 'timeout' } | { kind: 'drop' }>;

export interface FaultSchedule {
  /** How many calls fail; default 1, or unlimited when a probability is given. */
  readonly times?: number;
  /** Each call fails with this probability (seeded PRNG). */
  readonly probability?: number;
}

interface Armed {
  readonly fault: Fault;
  readonly probability: number;
  remaining: number;
}

export class FaultPlan {
  private readonly armed = new Map<Endpoint, Armed[]>();
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = mulberry32(seed);
  }

  inject(endpoint: Endpoint, fault: Fault, schedule: FaultSchedule = {}): void {
    const probability = schedule.probability ?? 1;
    if (!(probability >= 0 && probability <= 1)) throw new RangeError(`probability ${probability} is not within [0, 1]`);
    const remaining = schedule.times ?? (schedule.probability === undefined ? 1 : Infinity);
    this.armed.set(endpoint, [...(this.armed.get(endpoint) ?? []), { fault, probability, remaining }]);
  }

  clear(endpoint?: Endpoint): void {
    if (endpoint === undefined) this.armed.clear();
    else this.armed.delete(endpoint);
  }

  /** The fault this call suffers, if any; armed faults fire in the order they were injected. */
  take(endpoint: Endpoint): Fault | undefined {
    const queue = this.armed.get(endpoint) ?? [];
    for (const armed of queue) {
      if (armed.remaining <= 0) continue;
      if (armed.probability < 1 && this.random() >= armed.probability) continue;
      armed.remaining--;
      this.armed.set(endpoint, queue.filter((a) => a.remaining > 0));
      return armed.fault;
    }
    return undefined;
  }
}

/** The handler must run before the fault is delivered. */
export const runsHandler = (fault: Fault): boolean => fault.kind === 'noLocation' || fault.applied === true;

const ACCESS_DENIED = `<HTML><HEAD>
<TITLE>Access Denied</TITLE>
</HEAD><BODY>
<H1>Access Denied</H1>

You don't have permission to access "http&#58;&#47;&#47;api&#46;schwabapi&#46;com&#47;" on this server.<P>
Reference&#32;&#35;18&#46;5b3e1002&#46;1757512800&#46;1a2b3c4d
</BODY>
</HTML>
`;

/** The response for a fault; noLocation edits the handler's reply. */
export function faultReply(fault: AnsweringFault, handled: Reply | undefined): Reply {
  switch (fault.kind) {
    case 'status': {
      const reply = schwabError(fault.status, `Simulated fault: HTTP ${fault.status}`);
      const retry = fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) };
      return { ...reply, headers: { ...reply.headers, ...retry } };
    }
    case 'html':
      return { status: fault.status ?? 403, headers: { 'Content-Type': 'text/html' }, body: ACCESS_DENIED };
    case 'gzip': {
      const reply = schwabError(fault.status ?? 500, 'Simulated fault: gzip-encoded error');
      return { ...reply, headers: { ...reply.headers, 'Content-Encoding': 'gzip' }, body: gzipSync(reply.body) };
    }
    case 'noLocation': {
      const { Location: _dropped, ...headers } = handled?.headers ?? {};
      return handled === undefined ? emptyReply(201) : { ...handled, headers };
    }
  }
}
