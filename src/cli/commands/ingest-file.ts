/**
 * ingest-file <logs.jsonl> --tokens <tokens.json>: appends logs (eth_getLogs JSON, one per line)
 * through the ingestion path. Malformed lines, and logs the chain path would not ask for, are
 * reported with their line number and skipped.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import * as E from 'fp-ts/lib/Either.js';
import { configFrom, parse, UsageError } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { requireSettings } from '../../config.ts';
import { decodeRpcLog, toRecordedLog, type RecordedLog } from '../../chain/rpc-log.ts';
import { tokensOfLog } from '../../chain/log-tokens.ts';
import { hasOrderbookTopic } from '../../domain/orderbook-abi.ts';
import { Ingester } from '../../services/ingester.ts';
import { fileTokenResolver } from '../tokens-file.ts';
import { logger } from '../../log.ts';

export interface FileReadReport {
  readonly logs: RecordedLog[];
  readonly lines: number;
  readonly malformed: number;
  readonly otherContracts: number;
  readonly otherEvents: number;
  readonly removed: number;
}

/** Reads and decodes every line; reports (never silently drops) the ones it cannot use. */
export async function readLogFile(path: string, chainId: number, orderbook: string, report: (line: number, problem: string) => void): Promise<FileReadReport> {
  const logs: RecordedLog[] = [];
  let lines = 0, malformed = 0, otherContracts = 0, otherEvents = 0, removed = 0;
  const input = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const text of input) {
    lines++;
    if (text.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      malformed++;
      report(lines, `not JSON: ${(e as Error).message}`);
      continue;
    }
    const decoded = decodeRpcLog(json);
    if (E.isLeft(decoded)) {
      malformed++;
      report(lines, decoded.left);
    } else if (decoded.right.address !== orderbook) {
      otherContracts++;
      report(lines, `log of ${decoded.right.address}, not the configured orderbook ${orderbook}`);
    } else if (!hasOrderbookTopic(decoded.right.topics)) {
      otherEvents++;
      report(lines, `topic0 ${decoded.right.topics[0] ?? '(none)'}: not a ClearV2, AfterClear or TakeOrderV2 log`);
    } else if (decoded.right.removed === true) {
      removed++;
      report(lines, 'log marked removed (reorged out); not ingested');
    } else logs.push(toRecordedLog(chainId, decoded.right));
  }
  return { logs, lines, malformed, otherContracts, otherEvents, removed };
}

export async function ingestFile(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { tokens: { type: 'string' } }, ['<logs.jsonl>']);
  const [file] = positionals;
  if (file === undefined || values.tokens === undefined) throw new UsageError('usage: hedge-ledger ingest-file <logs.jsonl> --tokens <tokens.json>');
  const config = configFrom(values);
  requireSettings(config, ['orderbook'], 'ingest-file');
  const log = logger('ingest-file');
  const tokens = fileTokenResolver(values.tokens);
  const read = await readLogFile(file, config.chainId, config.orderbook!, (line, problem) => log.warn({ file, line, problem }, 'line skipped'));
  const result = await withStore(config.store, (store) =>
    new Ingester({ store, chainId: config.chainId, orderbook: config.orderbook!, tokens, tokensOf: tokensOfLog }).ingest(read.logs),
  );
  const { appended, alreadyIngested, outOfOrder, tokensRecorded } = result;
  // A token's symbol is recorded once: said now, not found out later from rejected fills.
  for (const token of tokens.missing) log.warn({ tokens: values.tokens, token }, 'token not in the tokens file: recorded as unknown for good, so its fills are rejected');
  const tokensUnknown = tokens.missing.size;
  if (outOfOrder > 0) log.warn({ file, outOfOrder }, 'logs at or before the ledger\'s last log were not appended: ingest files in chain order');
  const summary = { file, lines: read.lines, appended, alreadyIngested, outOfOrder, tokensRecorded, tokensUnknown, malformed: read.malformed, otherContracts: read.otherContracts, otherEvents: read.otherEvents, removed: read.removed };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `${file}: ${read.lines} lines, ${appended} logs appended, ${alreadyIngested} already ingested, ${tokensRecorded} tokens recorded (${tokensUnknown} unknown); ` +
        `skipped ${outOfOrder} out of chain order, ${read.malformed} malformed, ${read.otherContracts} of other contracts, ${read.otherEvents} of other events, ${read.removed} removed\n`,
    );
  }
}
