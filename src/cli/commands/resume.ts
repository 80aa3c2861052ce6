/**
 * resume <SYMBOL> --reason <text>: the operator's word that hedging a halted symbol may go on.
 * Appends `HedgingResumed` to `hedgectl-<SYMBOL>` at the stream's exact revision, with the id
 * UUIDv5(`hedgectl:<SYMBOL>:<revision>`); the accumulator folds it (clears the halt and the
 * failure count) and hedges the symbol again if |net| ≥ 1. A symbol that is not halted is
 * refused unless --force: resuming also resets its count of consecutive broker failures.
 */
import { NO_STREAM } from '../../eventstore/port.ts';
import { WrongExpectedVersion } from '../../eventstore/errors.ts';
import { encodeEvent, streams } from '../../domain/events.ts';
import { controlEventId } from '../../domain/ids.ts';
import { foldLedger } from '../../services/ledger-query.ts';
import { positionsJson } from '../../../projections/queries.ts';
import { jsonOption, parse, UsageError, withLedger } from '../context.ts';
import { Ticker } from '../../domain/codecs.ts';

export async function resume(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { reason: { type: 'string' }, force: { type: 'boolean', default: false }, ...jsonOption }, ['<SYMBOL>']);
  const [symbol] = positionals;
  if (symbol === undefined) throw new UsageError('takes one base ticker: resume <SYMBOL> --reason <text>');
  if (!Ticker.is(symbol)) throw new UsageError(`the symbol is a base ticker such as GME, not ${JSON.stringify(symbol)}`);
  const reason = values.reason?.trim() ?? '';
  if (reason === '') throw new UsageError('--reason <text> is required: say why hedging may go on (it is recorded in the ledger)');

  const result = await withLedger(values, 'resume', async (store, fold) => {
    // Read before the fold: a resume written meanwhile (the fold can take a while) makes our append conflict.
    const stream = streams.hedgeControl(symbol);
    const last = await store.readLastEvent(stream);
    const position = positionsJson(await foldLedger(store, fold)).find((p) => p.symbol === symbol);
    if (position === undefined) throw new UsageError(`the ledger has never seen ${symbol}; nothing to resume`);
    if (!position.halted && !values.force) {
      throw new UsageError(`${symbol} is not halted (net ${position.net}, ${position.consecutiveFailures} consecutive failures); nothing to resume (--force appends HedgingResumed anyway, resetting the failure count)`);
    }
    const revision = last === undefined ? 0n : last.revision + 1n;
    const at = new Date().toISOString();
    const raced = `someone else wrote to ${stream} at the same time; check \`hedge-ledger positions\` and run resume again if ${symbol} is still halted`;
    try {
      // The id names the revision, so another operator's resume there is taken as a repeat: nothing of ours was written.
      const appended = await store.append(stream, [encodeEvent(controlEventId(symbol, revision), { type: 'HedgingResumed', data: { symbol, reason, at } })], last?.revision ?? NO_STREAM);
      if (!appended.written) throw new Error(raced);
    } catch (e) {
      if (e instanceof WrongExpectedVersion) throw new Error(raced, { cause: e });
      throw e;
    }
    return { symbol, stream, revision: Number(revision), reason, at, wasHalted: position.halted, haltReason: position.haltReason, net: position.net };
  });

  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `resumed ${symbol}: HedgingResumed appended to ${result.stream} (revision ${result.revision})` +
        `${result.haltReason ? `; it was halted: ${result.haltReason}` : ''}.\n` +
        `The running service folds it and hedges ${symbol} again (net ${result.net}, a hedge follows if |net| ≥ 1).\n`,
    );
  }
}
