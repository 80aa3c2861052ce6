/**
 * The accumulator service: folds the ledger's streams in global order, one event at a time,
 * and appends each decision to `hedgecmd-<SYMBOL>` at its exact revision with its
 * deterministic id, then checkpoints. A crash between the append and the checkpoint
 * re-derives the same decision on restart, and its append writes nothing.
 */
import type { EventStore, From, NewEvent, Position, RecordedEvent } from '../eventstore/port.ts';
import { NO_STREAM, comparePositions } from '../eventstore/port.ts';
import { StreamNotFound, WrongExpectedVersion, type CorruptEvent } from '../eventstore/errors.ts';
import { LEDGER_PREFIXES, decodeEvent, encodeEvent, streams, type Envelope } from '../domain/events.ts';
import { hedgeDecisionId } from '../domain/ids.ts';
import { format } from '../domain/decimal.ts';
import { alreadyFolded, initialState, isDecision, react, symbolState, type AccumulatorConfig, type AccumulatorState, type Decision } from '../../projections/accumulator.ts';
import { SnapshotError, deserializeState, serializeState } from '../../projections/accumulator-snapshot.ts';
import type { Logger } from '../log.ts';
import { LULL, withLulls } from './lulls.ts';

export const ACCUMULATOR_CHECKPOINT = 'accumulator';
/** Checkpoint at least this often (events) even when nothing was decided. */
const CHECKPOINT_EVERY = 1000;

export interface AccumulatorServiceOptions {
  readonly store: EventStore;
  readonly config: AccumulatorConfig;
  readonly log: Logger;
  /** Called after each decision's append (written: false when it was already recorded), before the checkpoint. */
  readonly onAppended?: (decision: Decision, written: boolean) => Promise<void> | void;
}

/** Thrown when a recorded decision differs from what the fold decides now: history and config disagree. */
export class DecisionDiverged extends Error {
  override readonly name = 'DecisionDiverged';
}

/** A decision as the accumulator appends it: under its deterministic id, encoded by its codec. */
export const decisionEvent = (decision: Decision): NewEvent => encodeEvent(hedgeDecisionId(decision.data.symbol, decision.data.sequence), decision);

/** Whether a recorded event is `event`: both encoded by the same codec, the same decision is the same JSON. */
export const recordedAs = (recorded: Envelope, event: NewEvent): boolean => JSON.stringify(encodeEvent(recorded.id, recorded)) === JSON.stringify(event);

export class AccumulatorService {
  private state: AccumulatorState = initialState;
  private position: From = 'start';
  private sinceCheckpoint = 0;
  /**
   * The position of a checkpoint folded under another configuration (or format), kept until this fold has passed it:
   * replaced earlier, it would name this configuration before the decisions it covered were checked against it, and
   * the queries' warning about other settings would fall silent while the fold may still stop with DecisionDiverged.
   */
  private unverifiedUpTo: Position | undefined;

  constructor(private readonly options: AccumulatorServiceOptions) {}

  get current(): { state: AccumulatorState; position: From } {
    return { state: this.state, position: this.position };
  }

  /**
   * Restores the last checkpoint (position and fold snapshot), or starts from scratch: also when
   * the snapshot cannot be used (another format, another configuration). Folding the log again
   * is always safe: every decision it derives is checked against the recorded one.
   */
  async restore(): Promise<void> {
    const checkpoint = await this.options.store.readCheckpoint(ACCUMULATOR_CHECKPOINT);
    if (checkpoint?.snapshot === undefined) return;
    try {
      this.state = deserializeState(checkpoint.snapshot, this.options.config);
    } catch (error) {
      if (!(error instanceof SnapshotError)) throw error;
      this.options.log.warn({ position: checkpoint.position, reason: error.message }, 'checkpoint unusable; folding the ledger again from the start');
      this.unverifiedUpTo = checkpoint.position;
      return;
    }
    this.position = checkpoint.position;
    this.options.log.info({ position: checkpoint.position }, 'accumulator resumed from checkpoint');
  }

  /** Folds everything stored after the current position, then checkpoints; returns the number of events. */
  async catchUp(): Promise<number> {
    let n = 0;
    for await (const event of this.options.store.readAll({ from: this.position, prefixes: LEDGER_PREFIXES })) {
      await this.handle(event);
      n++;
    }
    await this.checkpoint();
    return n;
  }

  /** Follows the store live until the signal aborts; checkpoints when it has handled everything delivered and the store goes quiet. */
  async follow(signal: AbortSignal): Promise<void> {
    const subscription = this.options.store.subscribe({ from: this.position, prefixes: LEDGER_PREFIXES });
    const stop = () => void subscription.close();
    signal.addEventListener('abort', stop, { once: true });
    try {
      // A second without an event means caught up: checkpoint then, so the checkpoint (/status) shows the head without one per event.
      for await (const event of withLulls(subscription, 1_000)) {
        if (event !== LULL) await this.handle(event);
        else if (this.sinceCheckpoint > 0) await this.checkpoint();
        if (signal.aborted) break;
      }
    } finally {
      signal.removeEventListener('abort', stop);
      await subscription.close();
      await this.checkpoint();
    }
  }

  /** Folds one event; checkpoints after every decision, and every CHECKPOINT_EVERY events otherwise. */
  private async handle(recorded: RecordedEvent): Promise<void> {
    const decoded = decodeEvent(recorded);
    let decided = false;
    if (decoded._tag === 'Left') {
      // A corrupt event is recorded in the log and skipped; it never stops the fold.
      this.options.log.error({ err: decoded.left, stream: recorded.stream, revision: recorded.revision.toString() }, 'skipping corrupt event');
    } else {
      if (isDecision(decoded.right)) this.assertDerived(decoded.right, recorded);
      const reaction = react(this.options.config, this.state, decoded.right);
      // The state moves on only once its decisions are stored: a checkpoint taken after a failed
      // append (on shutdown) must not hold a state that has already seen this event, or the
      // restart would skip it and the decision would never be recorded.
      for (const decision of reaction.decisions) await this.appendDecision(decision);
      this.state = reaction.state;
      decided = reaction.decisions.length > 0;
    }
    this.position = recorded.position;
    if (decided || ++this.sinceCheckpoint >= CHECKPOINT_EVERY) await this.checkpoint();
  }

  private async appendDecision(decision: Decision): Promise<void> {
    const { symbol, sequence } = decision.data;
    const expected = sequence === 1 ? NO_STREAM : BigInt(sequence - 2);
    const event = decisionEvent(decision);
    let written: boolean;
    try {
      ({ written } = await this.options.store.append(streams.hedgeCommands(symbol), [event], expected));
    } catch (e) {
      if (e instanceof WrongExpectedVersion) throw await this.conflict(decision, event, e);
      throw e;
    }
    // A repeat is told by its id alone (the id names symbol and sequence, not the content): compare what is recorded.
    if (!written) await this.assertRecorded(decision, event);
    this.options.log.info({ symbol, sequence, decision: decision.type, written, ...describe(decision) }, 'decision appended');
    await this.options.onAppended?.(decision, written);
  }

  /**
   * Throws DecisionDiverged when a recorded decision is one this fold has not derived by the time it reads it back:
   * adopted, its outcome would move `net` by a hedge of fills the fold never saw (a narrower configuration).
   */
  private assertDerived(decision: Envelope<Decision>, recorded: RecordedEvent): void {
    const { symbol, sequence } = decision.data;
    if (alreadyFolded(this.state, decision) || sequence <= symbolState(this.state, symbol).decisions) return;
    throw diverged(decision, `is recorded (${recorded.type} ${JSON.stringify(recorded.data)}), but this fold decides no such decision (another configuration, or a corrupt stored event it depends on: look for 'skipping corrupt event' in the log)`);
  }

  /** The event stored at the decision's revision (n - 1), if the stream reaches it. */
  private async recordedAt(decision: Decision): Promise<RecordedEvent | undefined> {
    const { symbol, sequence } = decision.data;
    let recorded: RecordedEvent | undefined;
    try {
      for await (const e of this.options.store.readStream(streams.hedgeCommands(symbol), { fromRevision: BigInt(sequence - 1), maxCount: 1 })) recorded = e;
    } catch (e) {
      if (!(e instanceof StreamNotFound)) throw e;
    }
    return recorded;
  }

  /** Throws DecisionDiverged unless the decision recorded at this one's revision is the same. */
  private async assertRecorded(decision: Decision, event: NewEvent): Promise<void> {
    const recorded = await this.recordedAt(decision);
    const decoded = recorded && decodeEvent(recorded);
    if (decoded?._tag === 'Left') throw corruptRecorded(decision, decoded.left);
    const same = decoded?._tag === 'Right' && recordedAs(decoded.right, event);
    // Under its id, by an accumulator, so one that folded the ledger under another configuration.
    if (!same) throw diverged(decision, `is not the one recorded (${recorded ? `${recorded.type} ${JSON.stringify(recorded.data)}` : 'nothing'})`);
  }

  /**
   * Why the append conflicted. Not another configuration: every accumulator writes decision n under the
   * same id at the same revision, which the store takes as a repeat (assertRecorded compares the content).
   */
  private async conflict(decision: Decision, event: NewEvent, e: WrongExpectedVersion): Promise<DecisionDiverged> {
    const { symbol, sequence } = decision.data;
    const stream = streams.hedgeCommands(symbol);
    const cannot = `decision ${sequence} for ${symbol} cannot be appended to ${stream}`;
    if (e.stream !== stream) return new DecisionDiverged(`${cannot}: its id ${event.id} is already used in ${e.stream}; ${RESTORE}`, { cause: e });
    const recorded = await this.recordedAt(decision);
    if (recorded === undefined) {
      return new DecisionDiverged(`${cannot}: the stream ends at revision ${e.actual}, short of decision ${sequence - 1}, which was recorded: decisions are missing from the store; ${RESTORE}`, { cause: e });
    }
    const decoded = decodeEvent(recorded);
    if (decoded._tag === 'Left') return corruptRecorded(decision, decoded.left, e);
    if (recorded.id !== event.id) {
      return new DecisionDiverged(
        `decision ${sequence} for ${symbol} differs from the one recorded in ${stream} (${recorded.type} ${JSON.stringify(recorded.data)}), ` +
          `whose id ${recorded.id} is not decision ${sequence}'s: no accumulator wrote it, whatever its configuration; something else writes to ${stream}`,
        { cause: e },
      );
    }
    return new DecisionDiverged(`${cannot}: ${e.message}, though decision ${sequence} is recorded there`, { cause: e });
  }

  private async checkpoint(): Promise<void> {
    this.sinceCheckpoint = 0;
    if (this.position === 'start' || (this.unverifiedUpTo !== undefined && comparePositions(this.position, this.unverifiedUpTo) < 0)) return;
    await this.options.store.saveCheckpoint(ACCUMULATOR_CHECKPOINT, { position: this.position as Position, snapshot: serializeState(this.state, this.options.config) });
  }
}

const RESTORE = 'restore the store from a backup (docs/operations.md, Backing up and restoring)';

const diverged = (decision: Decision, how: string): DecisionDiverged =>
  new DecisionDiverged(
    `decision ${decision.data.sequence} for ${decision.data.symbol} ${how}; ` +
      'the configuration (owners, orderbook, symbol map, failure limit) must match the one that wrote this ledger',
  );

/** Unreadable, the recorded decision is no evidence of another configuration: say what it is. */
const corruptRecorded = (decision: Decision, corrupt: CorruptEvent, cause?: Error): DecisionDiverged =>
  new DecisionDiverged(
    `decision ${decision.data.sequence} for ${decision.data.symbol} cannot be checked against the one recorded, which is corrupt (${corrupt.message}); ${RESTORE}`,
    cause && { cause },
  );

const describe = (d: Decision) =>
  d.type === 'HedgeRequested' ? { commandId: d.data.commandId, side: d.data.side, quantity: format(d.data.quantity) } : { reason: d.data.reason };
