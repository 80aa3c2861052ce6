/**
 * ingest-file <logs.jsonl> --tokens <tokens.json>: appends logs (eth_getLogs JSON, one per line)
 * through the ingestion path. Malformed lines, and logs the chain path would not ask for, are
 * reported with their line number and skipped.
 */
import * as E from 'fp-ts/lib/Either.js';
import { configFrom, jsonOption, parse, UsageError } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { requireSettings } from '../../config.ts';
import { decodeRpcLog, sortLogs, toRecordedLog, type RecordedLog } from '../../chain/rpc-log.ts';
import { tokensOfLog } from '../../chain/log-tokens.ts';
import { hasOrderbookTopic } from '../../domain/orderbook-abi.ts';
import { Ingester, LogConflict, type FileIngestReport } from '../../services/ingester.ts';
import { fileTokenResolver } from '../tokens-file.ts';
import { logger } from '../../log.ts';
import { readLineAt, readLines, type LinePlace } from '../../text-file.ts';
import { compareLogMarks, type LogMark } from '../../domain/log-order.ts';
import { progress } from '../progress.ts';
import { open, stat } from 'node:fs/promises';

/** A line that holds a usable log, and the log's place in chain order. */
export interface LogLine extends LinePlace, LogMark {}

/** What a first pass over a log file found, for the logs of `orderbook` on `chainId`. */
export interface FileScan {
  readonly path: string;
  readonly chainId: number;
  readonly orderbook: string;
  /** The usable logs' lines, in chain order (a file's repeats in file order). */
  readonly logs: LogLine[];
  readonly lines: number;
  /** Empty or whitespace only: skipped, not reported. */
  readonly blank: number;
  readonly malformed: number;
  readonly otherContracts: number;
  readonly otherEvents: number;
  readonly removed: number;
}

/** A log is a few KiB; a line this long is no log, and holding it whole would take memory without bound. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Logs per delivery to the ingester: bounds memory however long the file is. */
const LOGS_PER_DELIVERY = 2_000;

type Skipped = { readonly why: 'malformed' | 'otherContracts' | 'otherEvents' | 'removed'; readonly problem: string };

/** One line's log, or why it is skipped. */
function decodeLine(text: string | null, bytes: number, chainId: number, orderbook: string, maxLineBytes: number): E.Either<Skipped, RecordedLog> {
  if (text === null) return E.left({ why: 'malformed', problem: `${bytes} bytes, longer than the ${maxLineBytes} a line may have: not read` });
  let json: unknown;
  try {
    json = JSON.parse(text);
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

export interface ScanOptions {
  readonly maxLineBytes?: number;
  /** Told after each line how many bytes of the file are read. */
  readonly scanned?: (bytes: number) => void;
}

/**
 * Reads and checks every line, keeping only where each usable log is (the logs themselves would
 * take memory in proportion to the file); reports (never silently drops) the lines it cannot
 * use, and counts blank ones.
 */
export async function scanLogFile(path: string, chainId: number, orderbook: string, report: (line: number, problem: string) => void, options: ScanOptions = {}): Promise<FileScan> {
  const { maxLineBytes = MAX_LINE_BYTES, scanned = () => undefined } = options;
  const logs: LogLine[] = [];
  const skipped = { blank: 0, malformed: 0, otherContracts: 0, otherEvents: 0, removed: 0 };
  let lines = 0;
  for await (const line of readLines(path, maxLineBytes)) {
    lines = line.number;
    scanned(line.offset + line.bytes);
    if (line.text?.trim() === '') {
      skipped.blank++;
      continue;
    }
    const decoded = decodeLine(line.text, line.bytes, chainId, orderbook, maxLineBytes);
    if (E.isRight(decoded)) logs.push({ number: line.number, offset: line.offset, bytes: line.bytes, blockNumber: decoded.right.blockNumber, logIndex: decoded.right.logIndex });
    else {
      skipped[decoded.left.why]++;
      report(lines, decoded.left.problem);
    }
  }
  return { path, chainId, orderbook, logs: logs.sort(compareLogMarks), lines, ...skipped };
}

/** The file's lines changed between the scan and the reading back. */
export class FileChanged extends Error {
  override readonly name = 'FileChanged';
}

/**
 * The scanned logs, read back from their lines in chain order, in deliveries of about `size`
 * logs that never split a block (so each delivery holds all of a block's logs the file has).
 */
export async function* logsInChainOrder(scan: FileScan, size = LOGS_PER_DELIVERY): AsyncGenerator<RecordedLog[]> {
  const file = await open(scan.path);
  try {
    let delivery: RecordedLog[] = [];
    for (const place of scan.logs) {
      const previous = delivery[delivery.length - 1];
      if (delivery.length >= size && previous !== undefined && previous.blockNumber !== place.blockNumber) {
        yield delivery;
        delivery = [];
      }
      const log = decodeLine(await readLineAt(file, place), place.bytes, scan.chainId, scan.orderbook, Infinity);
      if (E.isLeft(log) || compareLogMarks(log.right, place) !== 0) throw new FileChanged(`${scan.path} changed while it was ingested: line ${place.number} no longer holds the log it held; run ingest-file again once the file is complete`);
      delivery.push(log.right);
    }
    if (delivery.length > 0) yield delivery;
  } finally {
    await file.close();
  }
}

/**
 * Appends a scanned file's logs in chain order, delivery by delivery, telling `appended` the
 * totals after each. A failure leaves the deliveries before it appended, and a LogConflict the blocks before its block.
 */
export async function appendLogFile(ingester: Ingester, scan: FileScan, appended: (total: FileIngestReport) => void, size = LOGS_PER_DELIVERY): Promise<FileIngestReport> {
  const total = { appended: 0, alreadyIngested: 0, outOfOrder: 0, tokensRecorded: 0 };
  const ingest = async (logs: readonly RecordedLog[]) => {
    const report = await ingester.ingest(logs);
    for (const key of Object.keys(total) as (keyof FileIngestReport)[]) total[key] += report[key];
    appended(total);
  };
  for await (const delivery of logsInChainOrder(scan, size)) {
    // Logs that contradict each other stop the file at their block: the blocks before it go in first.
    const { contradiction } = sortLogs(delivery);
    if (contradiction === null) {
      await ingestUpToConflict(delivery, ingest);
      continue;
    }
    const before = delivery.filter((log) => log.blockNumber < contradiction.blockNumber);
    if (before.length > 0) await ingestUpToConflict(before, ingest);
    throw new LogConflict(`${contradiction.reason}: the logs before block ${contradiction.blockNumber} are appended, none from it on`);
  }
  return total;
}

/**
 * Appends logs that agree with each other; one that contradicts a stored log (its id taken by other
 * content, removed by a reorg or not) stops them at its block, the blocks before it appended
 * first, one by one (only then: a delivery in one append is what makes a file fast).
 */
async function ingestUpToConflict(logs: readonly RecordedLog[], ingest: (logs: readonly RecordedLog[]) => Promise<void>): Promise<void> {
  try {
    await ingest(logs);
  } catch (error) {
    if (!(error instanceof LogConflict)) throw error;
    const blocks = new Map<bigint, RecordedLog[]>();
    for (const log of logs) {
      const block = blocks.get(log.blockNumber);
      if (block === undefined) blocks.set(log.blockNumber, [log]);
      else block.push(log);
    }
    for (const block of blocks.values()) await ingest(block); // throws at the conflicting block
    throw error;
  }
}

/** A logs file that is missing or not a file is bad usage (exit 2), as a tokens file is, not a failure at run time. */
async function logsFileSize(file: string): Promise<number> {
  let info;
  try {
    info = await stat(file);
  } catch (e) {
    throw new UsageError(`logs file ${file}: ${(e as Error).message}`);
  }
  if (!info.isFile()) throw new UsageError(`logs file ${file}: not a file`);
  return info.size;
}

export async function ingestFile(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { tokens: { type: 'string' }, ...jsonOption }, ['<logs.jsonl>']);
  const [file] = positionals;
  if (file === undefined || values.tokens === undefined) {
    const missing = file === undefined ? 'the logs file is missing' : '--tokens is missing (a JSON object of token address → ERC20 symbol)';
    throw new UsageError(`${missing}: hedge-ledger ingest-file <logs.jsonl> --tokens <tokens.json>`);
  }
  const config = configFrom(values);
  requireSettings(config, ['orderbook'], 'ingest-file');
  const log = logger('ingest-file');
  const tokens = fileTokenResolver(values.tokens);
  const megabytes = (bytes: number) => Math.round(bytes / 1e6);
  const size = megabytes(await logsFileSize(file));
  const checking = progress('ingest-file: MB checked');
  const scan = await scanLogFile(file, config.chainId, config.orderbook!, (line, problem) => log.warn({ file, line, problem }, 'line skipped'), { scanned: (bytes) => checking.update(megabytes(bytes), size) });
  checking.finish();
  const bar = progress('ingest-file: logs appended');
  let sofar: FileIngestReport | undefined;
  const { appended, alreadyIngested, outOfOrder, tokensRecorded } = await withStore(config.store, (store) =>
    appendLogFile(new Ingester({ store, chainId: config.chainId, orderbook: config.orderbook!, tokens, tokensOf: tokensOfLog }), scan, (total) => {
      sofar = total;
      bar.update(total.appended + total.alreadyIngested + total.outOfOrder, scan.logs.length);
    }),
  ).catch((error: unknown) => {
    bar.finish();
    log.error({ file, ...sofar }, 'ingest-file stopped: the logs before the failing block, in chain order, are stored');
    throw error;
  });
  bar.finish();
  // A token's symbol is recorded once: said now, not found out later from rejected fills.
  for (const token of tokens.missing) log.warn({ tokens: values.tokens, token }, 'token not in the tokens file: recorded as unknown for good, so its fills are rejected');
  const tokensUnknown = tokens.missing.size;
  if (outOfOrder > 0) log.warn({ file, outOfOrder }, 'logs at or before the ledger\'s last log were not appended: ingest files in chain order');
  const summary = { file, lines: scan.lines, appended, alreadyIngested, outOfOrder, tokensRecorded, tokensUnknown, blank: scan.blank, malformed: scan.malformed, otherContracts: scan.otherContracts, otherEvents: scan.otherEvents, removed: scan.removed };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `${file}: ${scan.lines} lines, ${appended} logs appended, ${alreadyIngested} already ingested, ${tokensRecorded} tokens recorded (${tokensUnknown} unknown); ` +
        `skipped ${outOfOrder} out of chain order, ${scan.blank} blank, ${scan.malformed} malformed, ${scan.otherContracts} of other contracts, ${scan.otherEvents} of other events, ${scan.removed} removed\n`,
    );
  }
}
