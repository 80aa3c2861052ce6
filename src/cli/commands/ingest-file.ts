/**
 * ingest-file <logs.jsonl> --tokens <tokens.json>: appends logs (eth_getLogs JSON, one per line)
 * through the ingestion path. Malformed lines, and logs the chain path would not ask for, are
 * reported with their line number and skipped.
 */
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
import { readLines, type Line } from '../../text-file.ts';

export interface FileReadReport {
  readonly logs: RecordedLog[];
  readonly lines: number;
  /** Empty or whitespace only: skipped, not reported. */
  readonly blank: number;
  readonly malformed: number;
  readonly otherContracts: number;
  readonly otherEvents: number;
  readonly removed: number;
}

/** A log is a few KiB; a line this long is no log, and holding it whole would take memory without bound. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

type Skipped = { readonly why: 'malformed' | 'otherContracts' | 'otherEvents' | 'removed'; readonly problem: string };

/** One line's log, or why it is skipped. */
function decodeLine(line: Line, chainId: number, orderbook: string, maxLineBytes: number): E.Either<Skipped, RecordedLog> {
  if (line.text === null) return E.left({ why: 'malformed', problem: `${line.bytes} bytes, longer than the ${maxLineBytes} a line may have: not read` });
  let json: unknown;
  try {
    json = JSON.parse(line.text);
  } catch (e) {
    return E.left({ why: 'malformed', problem: `not JSON: ${(e as Error).message}` });
  }
  const decoded = decodeRpcLog(json);
  if (E.isLeft(decoded)) return E.left({ why: 'malformed', problem: decoded.left });
  const log = decoded.right;
  if (log.address !== orderbook) return E.left({ why: 'otherContracts', problem: `log of ${log.address}, not the configured orderbook ${orderbook}` });
  if (!hasOrderbookTopic(log.topics)) return E.left({ why: 'otherEvents', problem: `topic0 ${log.topics[0] ?? '(none)'}: not a ClearV2, AfterClear or TakeOrderV2 log` });
  if (log.removed === true) return E.left({ why: 'removed', problem: 'log marked removed (reorged out); not ingested' });
  return E.right(toRecordedLog(chainId, log));
}

/** Reads and decodes every line; reports (never silently drops) the ones it cannot use, and counts blank ones. */
export async function readLogFile(path: string, chainId: number, orderbook: string, report: (line: number, problem: string) => void, maxLineBytes = MAX_LINE_BYTES): Promise<FileReadReport> {
  const logs: RecordedLog[] = [];
  const skipped = { blank: 0, malformed: 0, otherContracts: 0, otherEvents: 0, removed: 0 };
  let lines = 0;
  for await (const line of readLines(path, maxLineBytes)) {
    lines = line.number;
    if (line.text?.trim() === '') {
      skipped.blank++;
      continue;
    }
    const decoded = decodeLine(line, chainId, orderbook, maxLineBytes);
    if (E.isRight(decoded)) logs.push(decoded.right);
    else {
      skipped[decoded.left.why]++;
      report(lines, decoded.left.problem);
    }
  }
  return { logs, lines, ...skipped };
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
  const summary = { file, lines: read.lines, appended, alreadyIngested, outOfOrder, tokensRecorded, tokensUnknown, blank: read.blank, malformed: read.malformed, otherContracts: read.otherContracts, otherEvents: read.otherEvents, removed: read.removed };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `${file}: ${read.lines} lines, ${appended} logs appended, ${alreadyIngested} already ingested, ${tokensRecorded} tokens recorded (${tokensUnknown} unknown); ` +
        `skipped ${outOfOrder} out of chain order, ${read.blank} blank, ${read.malformed} malformed, ${read.otherContracts} of other contracts, ${read.otherEvents} of other events, ${read.removed} removed\n`,
    );
  }
}
