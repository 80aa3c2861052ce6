/**
 * The ingestion path on a real (in-memory SQLite) store: chain order whatever the delivery
 * order, dedupe, reorg compensation, the tip after removals, conflicts, racing ingesters.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { keccak256, stringToHex } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import { LEDGER_PREFIXES, decodeEvent } from '../../src/domain/events.ts';
import { logRecordedAgainEventId, logRemovedEventId } from '../../src/domain/ids.ts';
import { ingesterSettings } from '../../src/chain/ingester-service.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import type { RecordedLog } from '../../src/chain/rpc-log.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { Ingester, LogConflict, ReorgTooDeep, StreamMovedOn, type TokenResolver } from '../../src/services/ingester.ts';
import { LedgerView } from '../../projections/ledger.ts';
import { History, OTHER_OWNER, OUR_OWNER, TOKEN, afterClearLog, clearV2Log, io, takeOrderV2Log, txHash, type OrderSpec, type TokenName } from '../support/orderbook-logs.ts';
import { EXAMPLE, readLogFile, runCli } from '../support/cli.ts';
import { FileChanged, appendLogFile, logsInChainOrder, scanLogFile } from '../../src/cli/commands/ingest-file.ts';
import { config } from '../support/scenario.ts';
import { dyingStore, storedLogs, storedNet, type StoredEntry } from '../support/chain-fixture.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';

const history = new History();
const units = (x: string, decimals = 18): bigint => D.parse(x).units / 10n ** BigInt(18 - decimals);
const usdcFor = (shares: string): bigint => units(D.format(D.mul(D.parse(shares), D.parse('20'))), 6);
const place = (tx: string, block: bigint, logIndex: number) => ({ tx, block, logIndex });

/** Our order received `shares` (onchain BUY), at (block, logIndex) in transaction `tx`. */
const oB = (shares: string, tx: string, block: bigint, logIndex = 0, token: TokenName = 'tGME'): RecordedLog =>
  history.log(takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] }, { input: usdcFor(shares), output: units(shares) }), place(tx, block, logIndex)).data;

/** Our order gave `shares` (onchain SELL). */
const oS = (shares: string, tx: string, block: bigint, logIndex = 0, token: TokenName = 'tGME'): RecordedLog =>
  history.log(takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] }, { input: units(shares), output: usdcFor(shares) }), place(tx, block, logIndex)).data;

/** A clear in one transaction where bob (ours) buys `shares`: ClearV2 then AfterClear. */
const clearBuy = (shares: string, tx: string, block: bigint, token: TokenName = 'tAAPL'): RecordedLog[] => {
  const alice: OrderSpec = { owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] };
  const bob: OrderSpec = { owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] };
  const usdc = usdcFor(shares);
  return [
    history.log(clearV2Log(alice, bob), place(tx, block, 0)).data,
    history.log(afterClearLog({ aliceOutput: units(shares), bobOutput: usdc, aliceInput: usdc, bobInput: units(shares) }), place(tx, block, 1)).data,
  ];
};

/** The same log, mined into another block (a reorg re-mined its transaction). */
const remined = (log: RecordedLog, block = log.blockNumber): RecordedLog => ({ ...log, blockNumber: block, blockHash: keccak256(stringToHex(`fork block ${block}`)) });

const symbols = new Map<string, string>(Object.entries(TOKEN).map(([name, address]) => [address, name]));
const tokens: TokenResolver = {
  resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, symbols.has(a) ? { symbol: symbols.get(a)!, reason: null } : { symbol: null, reason: 'unknown' }])),
};

const stores: EventStore[] = [];
const memoryStore = async () => {
  const store = await openStore('sqlite::memory:');
  stores.push(store);
  return store;
};
const ingesterOn = (store: EventStore, extra: { batchSize?: number; recentLogs?: number } = {}) =>
  new Ingester({ store, chainId: config.fills.chainId, orderbook: config.fills.orderbook, tokens, tokensOf: tokensOfLog, ...extra });

const dirs: string[] = [];
/** A temporary directory, removed after the file's tests. */
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-file-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const marks = (entries: readonly StoredEntry[]) => entries.map((e) => `${e.type === 'OrderbookLogRemoved' ? 'removed ' : ''}${e.block}:${e.logIndex}`);

/** Folds the store event by event: net of `symbol` after each orderbook event, and the hedge commands decided. */
async function foldStepByStep(store: EventStore, symbol = 'GME'): Promise<{ nets: string[]; hedges: number }> {
  const view = new LedgerView(config);
  const nets: string[] = [];
  for await (const recorded of store.readAll({ prefixes: LEDGER_PREFIXES })) {
    const event = decodeEvent(recorded);
    if (event._tag === 'Left') throw event.left;
    view.apply(event.right);
    if (event.right.stream.startsWith('orderbook-')) nets.push(D.format(view.position(symbol).state.net));
  }
  return { nets, hedges: view.hedges.size };
}

describe('the ingestion path', () => {
  it.each(['ingest', 'appendCanonical'] as const)('spec scenario 14: logs delivered (101,0),(100,5),(100,2) are stored and folded in chain order (%s)', async (method) => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    const delivery = [oB('0.6', 'c', 101n, 0), oB('0.6', 'a', 100n, 5), oS('0.6', 'b', 100n, 2)];
    const report = await ingester[method](delivery);
    expect(report).toMatchObject({ appended: 3, alreadyIngested: 0, tokensRecorded: 2 });
    expect(marks(await storedLogs(store, ingester.stream))).toEqual(['100:2', '100:5', '101:0']);
    expect(await foldStepByStep(store)).toEqual({ nets: ['-0.6', '0', '0.6'], hedges: 0 });
  });

  it('the token resolver is told, for each token not recorded yet, the block of the first log that mentions it (where the chain may be asked)', async () => {
    const store = await memoryStore();
    const asked: ReadonlyMap<string, bigint>[] = [];
    const recording: TokenResolver = { resolve: (mentioned) => (asked.push(mentioned), tokens.resolve(mentioned)) };
    const ingester = new Ingester({ store, chainId: config.fills.chainId, orderbook: config.fills.orderbook, tokens: recording, tokensOf: tokensOfLog });
    await ingester.ingest([oB('0.6', 'c', 103n, 0, 'tAAPL'), oB('0.6', 'a', 101n, 5), oS('0.6', 'b', 102n, 2)]);
    await ingester.ingest([oS('0.6', 'd', 104n, 0, 'tAAPL'), oB('0.6', 'e', 105n, 0, 'tSPLG')]);
    const byAddress = (entries: [TokenName, bigint][]) => new Map(entries.map(([name, block]) => [TOKEN[name], block]));
    expect(asked).toEqual([byAddress([['tGME', 101n], ['USDC', 101n], ['tAAPL', 103n]]), byAddress([['tSPLG', 105n]])]);
    expect(asked.map((m) => [...m.keys()])).toEqual(asked.map((m) => [...m.keys()].sort())); // recorded in address order, as before
  });

  it('a duplicate delivery (again, and twice within one delivery) writes nothing new', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    const [x, y] = [oS('0.6', 'x', 100n), oS('0.3', 'y', 101n)];
    await ingester.ingest([x, y]);
    expect(await ingester.ingest([y, x, y])).toEqual({ appended: 0, alreadyIngested: 3, outOfOrder: 0, tokensRecorded: 0 });
    expect(await ingesterOn(store).appendCanonical([x, y, y])).toMatchObject({ appended: 0, alreadyIngested: 3 });
    expect(marks(await storedLogs(store, ingester.stream))).toEqual(['100:0', '101:0']);
    expect(await storedNet(store, config)).toEqual({ GME: '-0.9' });
  });

  it('a file log below the stream\'s last log is counted out of order, not as ingested; two different logs at one place are a conflict', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    await ingester.ingest([oS('0.6', 'x', 100n), oS('0.3', 'y', 102n)]);
    expect(await ingester.ingest([oS('0.2', 'early', 101n), oS('0.1', 'z', 103n)])).toEqual({ appended: 1, alreadyIngested: 0, outOfOrder: 1, tokensRecorded: 0 });
    const [a, b] = [oS('0.1', 'a', 104n), oS('0.2', 'b', 104n)]; // both at block 104, index 0
    await expect(ingester.ingest([a, b])).rejects.toThrow(/two different logs at block 104 index 0 \(transactions 0x\w+ and 0x\w+\); nothing was appended/);
    // Logs of two forks: one transaction's log at two blocks with two contents, one block with two hashes.
    const moved = oS('0.1', 'm', 105n);
    await expect(ingester.ingest([moved, { ...remined(moved, 106n), data: '0x' }])).rejects.toThrow(/log 0 of transaction 0x\w+ appears twice, differently \(blocks 105 and 106\); nothing was appended/);
    await expect(ingester.ingest([oS('0.1', 'p', 107n, 0), remined(oS('0.1', 'q', 107n, 1))])).rejects.toThrow(/block 107 has two hashes/);
    expect(marks(await storedLogs(store, ingester.stream))).toEqual(['100:0', '102:0', '103:0']);
    // The same log mined again in a later block is the same fill: its first place is kept, as when it is stored already.
    expect(await ingester.ingest([moved, remined(moved, 106n)])).toEqual({ appended: 1, alreadyIngested: 1, outOfOrder: 0, tokensRecorded: 0 });
    expect(marks(await storedLogs(store, ingester.stream))).toEqual(['100:0', '102:0', '103:0', '105:0']);
  });

  it('ingest-file takes only the events the chain path asks for: another event is reported by line and skipped, so a rescan removes nothing', async () => {
    const take = JSON.parse(readFileSync(join(EXAMPLE, 'logs.jsonl'), 'utf8').split('\n')[0]!);
    // eth_getLogs for the orderbook's address alone also returns its other events (DepositV2, AddOrderV2…).
    const deposit = { ...take, topics: [keccak256(stringToHex('DepositV2(address,address,uint256,uint256)'))], data: '0x', logIndex: '0x0', transactionHash: txHash('deposit') };
    const file = join(tempDir(), 'logs.jsonl');
    writeFileSync(file, `${JSON.stringify(deposit)}\n${JSON.stringify({ ...take, logIndex: '0x1' })}\n`);
    const problems: [number, string][] = [];
    const read = await readLogFile(file, config.fills.chainId, config.fills.orderbook, (line, problem) => problems.push([line, problem]));
    expect(read).toMatchObject({ lines: 2, malformed: 0, otherContracts: 0, otherEvents: 1, removed: 0 });
    expect(problems).toEqual([[1, `topic0 ${deposit.topics[0]}: not a ClearV2, AfterClear or TakeOrderV2 log`]]);

    const store = await memoryStore();
    const ingester = ingesterOn(store);
    await ingester.ingest(read.logs);
    // A reorg elsewhere has the follower rescan this unchanged block: the chain answers with the TakeOrderV2 log alone.
    const block = BigInt(take.blockNumber);
    const rescan = read.logs.filter((log) => log.logIndex === 1n);
    expect(await ingester.reconcile({ from: block, to: block }, rescan)).toMatchObject({ appended: 0, removed: 0 });
    expect(marks(await storedLogs(store, ingester.stream))).toEqual([`${block}:1`]);
  });

  it('ingest-file skips a line longer than the limit, unread, and reports it by number; the lines around it are read', async () => {
    const [first, second] = readFileSync(join(EXAMPLE, 'logs.jsonl'), 'utf8').split('\n');
    const limit = Math.max(first!.length, second!.length);
    const file = join(tempDir(), 'logs.jsonl');
    writeFileSync(file, `${first}\n${'x'.repeat(limit + 1)}\n${second}\n`);
    const problems: [number, string][] = [];
    const read = await readLogFile(file, config.fills.chainId, config.fills.orderbook, (line, problem) => problems.push([line, problem]), { maxLineBytes: limit });
    expect(read).toMatchObject({ lines: 3, malformed: 1 });
    expect(read.logs).toHaveLength(2);
    expect(problems).toEqual([[2, `${limit + 1} bytes, longer than the ${limit} a line may have: not read`]]);
  });

  /** The example's first log as eth_getLogs gives it, moved to (block, logIndex) in its own transaction. */
  const exampleLogAt = (block: number, logIndex: number): string => {
    const take = JSON.parse(readFileSync(join(EXAMPLE, 'logs.jsonl'), 'utf8').split('\n')[0]!);
    const hex = (n: number) => `0x${n.toString(16)}`;
    return JSON.stringify({ ...take, blockNumber: hex(block), blockHash: txHash(`block ${block}`), transactionHash: txHash(`${block}:${logIndex}`), logIndex: hex(logIndex) });
  };

  it('ingest-file reads a shuffled file back in chain order, in deliveries that never split a block, and stores what one delivery of all would', async () => {
    const inOrder = [100, 101, 102, 103, 104].flatMap((block) => [0, 1, 2].map((logIndex) => exampleLogAt(block, logIndex)));
    // A fixed shuffle, and a repeat of one log far from its first line.
    const lines = [...inOrder.filter((_, i) => i % 2 === 1).reverse(), ...inOrder.filter((_, i) => i % 2 === 0), inOrder[7]!];
    const file = join(tempDir(), 'logs.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const { chainId, orderbook } = config.fills;
    const scan = await scanLogFile(file, chainId, orderbook, () => undefined);
    expect(scan).toMatchObject({ lines: 16, malformed: 0 });

    const deliveries: RecordedLog[][] = [];
    for await (const delivery of logsInChainOrder(scan, 4)) deliveries.push(delivery);
    const blocksOf = (delivery: readonly RecordedLog[]) => [...new Set(delivery.map((log) => Number(log.blockNumber)))];
    expect(deliveries.map(blocksOf)).toEqual([[100, 101], [102], [103, 104]]); // 102 holds the repeat: 4 logs
    expect(deliveries.flat().map((log) => `${log.blockNumber}:${log.logIndex}`)).toEqual([...inOrder.map((_, i) => `${100 + Math.floor(i / 3)}:${i % 3}`)].flatMap((mark, i) => (i === 7 ? [mark, mark] : [mark])));

    const [byDelivery, atOnce] = [await memoryStore(), await memoryStore()];
    const totals: number[] = [];
    const report = await appendLogFile(ingesterOn(byDelivery), scan, (total) => totals.push(total.appended + total.alreadyIngested), 4);
    expect(report).toEqual({ appended: 15, alreadyIngested: 1, outOfOrder: 0, tokensRecorded: 2 });
    expect(totals).toEqual([6, 10, 16]);
    await ingesterOn(atOnce).ingest(deliveries.flat());
    expect(await storedLogs(byDelivery, ingesterOn(byDelivery).stream)).toEqual(await storedLogs(atOnce, ingesterOn(atOnce).stream));
  });

  it('ingest-file stops at two different logs in one place; the blocks before them stay appended', async () => {
    const conflicting = JSON.stringify({ ...JSON.parse(exampleLogAt(101, 0)), data: '0x' });
    const file = join(tempDir(), 'logs.jsonl');
    writeFileSync(file, [exampleLogAt(100, 0), exampleLogAt(100, 1), exampleLogAt(101, 0), conflicting, exampleLogAt(102, 0)].join('\n'));
    const scan = await scanLogFile(file, config.fills.chainId, config.fills.orderbook, () => undefined);
    const store = await memoryStore();
    await expect(appendLogFile(ingesterOn(store), scan, () => undefined, 2)).rejects.toThrow(LogConflict);
    expect(marks(await storedLogs(store, ingesterOn(store).stream))).toEqual(['100:0', '100:1']);
  });

  // Found by the ingest-file audit: in one delivery (a file under ~2,000 logs is one), a contradiction appended nothing at all.
  const contradictions = {
    'two different logs at one place': () => JSON.stringify({ ...JSON.parse(exampleLogAt(101, 0)), transactionHash: txHash('another transaction') }),
    'one log twice, differently': () => JSON.stringify({ ...JSON.parse(exampleLogAt(101, 0)), data: '0x' }),
    'one block with two hashes': () => JSON.stringify({ ...JSON.parse(exampleLogAt(101, 1)), blockHash: txHash('another block 101') }),
    'one log at two blocks, differently': () => JSON.stringify({ ...JSON.parse(exampleLogAt(101, 1)), transactionHash: txHash('100:1'), data: '0x' }),
  };
  it.each(Object.keys(contradictions) as (keyof typeof contradictions)[])('ingest-file in deliveries of the default size: %s stops the file at that block, the blocks before it appended', async (kind) => {
    const file = join(tempDir(), 'logs.jsonl');
    writeFileSync(file, [exampleLogAt(100, 0), exampleLogAt(100, 1), exampleLogAt(101, 0), contradictions[kind](), exampleLogAt(102, 0)].join('\n'));
    const scan = await scanLogFile(file, config.fills.chainId, config.fills.orderbook, () => undefined);
    const store = await memoryStore();
    const totals: number[] = [];
    await expect(appendLogFile(ingesterOn(store), scan, (total) => totals.push(total.appended))).rejects.toThrow(/ at block 101 index 0 |block 101 has two hashes|\(blocks 101 and 101\)|\(blocks 100 and 101\)/);
    await expect(appendLogFile(ingesterOn(store), scan, () => undefined)).rejects.toThrow(/: the logs before block 101 are appended, none from it on$/);
    expect(totals).toEqual([2]);
    expect(marks(await storedLogs(store, ingesterOn(store).stream))).toEqual(['100:0', '100:1']);
  });

  it('ingest-file: the same log at another place counts as already ingested, whether in the same delivery or a later one (docs/cli.md)', async () => {
    const file = join(tempDir(), 'logs.jsonl');
    // 100:0's transaction and index, with its content, at block 102: a reorg may mine a transaction again elsewhere.
    const moved = JSON.stringify({ ...JSON.parse(exampleLogAt(102, 0)), transactionHash: txHash('100:0') });
    writeFileSync(file, [exampleLogAt(100, 0), exampleLogAt(101, 0), moved].join('\n'));
    const scan = await scanLogFile(file, config.fills.chainId, config.fills.orderbook, () => undefined);
    const oneDelivery = await memoryStore();
    expect(await appendLogFile(ingesterOn(oneDelivery), scan, () => undefined)).toMatchObject({ appended: 2, alreadyIngested: 1 });
    expect(marks(await storedLogs(oneDelivery, ingesterOn(oneDelivery).stream))).toEqual(['100:0', '101:0']);
    const deliveriesOfOne = await memoryStore();
    expect(await appendLogFile(ingesterOn(deliveriesOfOne), scan, () => undefined, 1)).toMatchObject({ appended: 2, alreadyIngested: 1 });
    expect(marks(await storedLogs(deliveriesOfOne, ingesterOn(deliveriesOfOne).stream))).toEqual(['100:0', '101:0']);
  });

  it('ingest-file: a log whose id the ledger holds with other content stops the file at its block, the blocks before it in the same delivery appended', async () => {
    const dir = tempDir();
    const [stored, other] = [join(dir, 'stored.jsonl'), join(dir, 'other.jsonl')];
    writeFileSync(stored, exampleLogAt(100, 0));
    // The stored log's transaction and index, at block 103 with other data.
    const taken = JSON.stringify({ ...JSON.parse(exampleLogAt(103, 0)), transactionHash: txHash('100:0'), data: '0x' });
    writeFileSync(other, [exampleLogAt(101, 0), exampleLogAt(102, 0), taken, exampleLogAt(104, 0)].join('\n'));
    const store = await memoryStore();
    await appendLogFile(ingesterOn(store), await scanLogFile(stored, config.fills.chainId, config.fills.orderbook, () => undefined), () => undefined);
    const totals: number[] = [];
    const scan = await scanLogFile(other, config.fills.chainId, config.fills.orderbook, () => undefined);
    await expect(appendLogFile(ingesterOn(store), scan, (total) => totals.push(total.appended))).rejects.toThrow(/with other content than the chain now has at block 103 /);
    expect(totals).toEqual([1, 2]);
    expect(marks(await storedLogs(store, ingesterOn(store).stream))).toEqual(['100:0', '101:0', '102:0']);
  });

  it('ingest-file through the binary: a contradiction exits 1 with the counts of what it appended; the corrected file carries on', async () => {
    const dir = tempDir();
    const good = [exampleLogAt(100, 0), exampleLogAt(100, 1), exampleLogAt(101, 0), exampleLogAt(102, 0)];
    writeFileSync(join(dir, 'bad.jsonl'), [...good.slice(0, 3), contradictions['two different logs at one place'](), good[3]].join('\n'));
    writeFileSync(join(dir, 'good.jsonl'), good.join('\n'));
    const args = (file: string) => ['ingest-file', join(dir, file), '--tokens', join(EXAMPLE, 'tokens.json'), '--json', '--store', `sqlite:${join(dir, 'ledger.db')}`, '--config', join(EXAMPLE, 'ledger.json')];
    const bad = await runCli(args('bad.jsonl'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\nhedge-ledger ingest-file: two different logs at block 101 index 0 \(transactions 0x\w+ and 0x\w+\): the logs before block 101 are appended, none from it on\n$/);
    expect(bad.stderr.split('\n').filter((l) => l.includes('ingest-file stopped')).map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ appended: 2, alreadyIngested: 0 })]);
    const fixed = await runCli(args('good.jsonl'));
    expect(fixed.code).toBe(0);
    expect(JSON.parse(fixed.stdout)).toMatchObject({ appended: 2, alreadyIngested: 2, outOfOrder: 0 });
  });

  it('ingest-file stops with FileChanged when a line no longer holds the log the scan found there', async () => {
    const file = join(tempDir(), 'logs.jsonl');
    const [first, second] = [exampleLogAt(100, 0), exampleLogAt(100, 1)];
    writeFileSync(file, `${first}\n${second}\n`);
    const { chainId, orderbook } = config.fills;
    const scan = await scanLogFile(file, chainId, orderbook, () => undefined);
    writeFileSync(file, `${second}\n${first}\n`); // same lengths, other logs
    const read = async () => {
      for await (const _ of logsInChainOrder(scan)) void _;
    };
    await expect(read()).rejects.toThrow(new FileChanged(`${file} changed while it was ingested: line 1 no longer holds the log it held; run ingest-file again once the file is complete`));
  });

  it('counts what each racer wrote, though its plan was interrupted mid-way and made again', async () => {
    const store = await memoryStore();
    const logs = [100n, 101n, 102n, 103n, 104n, 105n].map((block) => oS('0.1', `r${block}`, block));
    let racer: Promise<unknown> | undefined;
    let appends = 0;
    // Before A's second batch (102, 103), B appends 102 alone: A's append conflicts, and A plans again.
    const interrupted: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: async (stream: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) => {
        if (stream.startsWith('orderbook-') && ++appends === 2) await (racer = ingesterOn(store).ingest([logs[2]!]));
        return store.append(stream, events, expected);
      },
    });
    const a = await ingesterOn(interrupted, { batchSize: 2 }).ingest(logs);
    expect(a).toEqual({ appended: 5, alreadyIngested: 1, outOfOrder: 0, tokensRecorded: 2 });
    expect(await racer).toEqual({ appended: 1, alreadyIngested: 0, outOfOrder: 0, tokensRecorded: 0 });
    expect(marks(await storedLogs(store, ingesterOn(store).stream))).toEqual(['100:0', '101:0', '102:0', '103:0', '104:0', '105:0']);
  });

  it('a reorg: orphaned logs are compensated in chain order (ClearV2 before its AfterClear), kept logs stay, canonical ones follow', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    const [t1, t2] = [oS('0.6', 't1', 100n), oS('0.3', 't2', 102n)];
    const clear = clearBuy('2.5', 'clear', 101n);
    await ingester.appendCanonical([t1, ...clear, t2]);
    expect(await storedNet(store, config)).toEqual({ AAPL: '2.5', GME: '-0.9' });

    // The fork from block 101: the clear is gone, t2 re-mined at the same place in a new block, t3 is new.
    const t3 = oB('1', 't3', 101n);
    const canonical = [remined(t2), t3];
    expect(await ingester.reconcile({ from: 101n, to: 103n }, canonical)).toEqual({ appended: 1, removed: 2, alreadyIngested: 1, tokensRecorded: 0 });

    const entries = await storedLogs(store, ingester.stream);
    expect(marks(entries)).toEqual(['100:0', '101:0', '101:1', '102:0', 'removed 101:0', 'removed 101:1', '101:0']);
    const removal = (await store.readStream(ingester.stream, { fromRevision: 4n, maxCount: 1 })[Symbol.asyncIterator]().next()).value;
    expect(removal.id).toBe(logRemovedEventId(config.fills.chainId, clear[0]!.transactionHash, 0, clear[0]!.blockHash));

    // Positions equal those of the canonical chain ingested from scratch.
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical([t1, ...canonical]);
    expect(await storedNet(store, config)).toEqual(await storedNet(fresh, config));
    expect(await storedNet(store, config)).toEqual({ GME: '0.1' });
    // Reconciling the same answer again is a no-op.
    expect(await ingesterOn(store).reconcile({ from: 101n, to: 103n }, canonical)).toMatchObject({ appended: 0, removed: 0 });
  });

  it('the tip after removals lets the logs that follow be appended, though they sit below the old tip', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    await ingester.appendCanonical([oS('0.6', 'a', 100n), oS('0.3', 'b', 105n)]);
    expect(await ingester.reconcile({ from: 101n, to: 110n }, [])).toMatchObject({ removed: 1 });
    expect(await ingesterOn(store).ingest([oS('0.1', 'c', 103n)])).toMatchObject({ appended: 1, alreadyIngested: 0 });
    expect(await ingester.appendCanonical([oS('0.2', 'd', 104n)])).toMatchObject({ appended: 1 });
    expect(marks(await storedLogs(store, ingester.stream))).toEqual(['100:0', '105:0', 'removed 105:0', '103:0', '104:0']);
    expect(await storedNet(store, config)).toEqual({ GME: '-0.9' });
  });

  it('a log id the chain fills with other content from another block replaces the stored log: removed, the chain\'s recorded again (once, though two ingesters race); other content in the very block stored is a conflict', async () => {
    const store = await memoryStore();
    const t1 = oS('0.6', 't1', 100n);
    await ingesterOn(store).appendCanonical([t1]);
    // A reorg re-executed t1's transaction in another block: the same place, another amount.
    const changed = { ...remined(t1), data: oS('0.7', 'other', 100n).data };
    const [a, b] = [ingesterOn(store), ingesterOn(store)];
    await Promise.all([a.recentBlocks(), b.recentBlocks()]); // both index the stream as it is now
    const reports = await Promise.all([a.appendCanonical([changed]), b.appendCanonical([changed])]);
    expect(reports.map((r) => [r.removed, r.appended]).sort()).toEqual([[0, 0], [1, 1]]);
    expect(marks(await storedLogs(store, a.stream))).toEqual(['100:0', 'removed 100:0', '100:0']);
    const ids: string[] = [];
    for await (const e of store.readStream(a.stream)) ids.push(e.id);
    expect(ids[1]).toBe(logRemovedEventId(config.fills.chainId, t1.transactionHash, 0, t1.blockHash));
    expect(ids[2]).toBe(logRecordedAgainEventId(ids[1]!));
    expect(await storedNet(store, config)).toEqual({ GME: '-0.7' });
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical([changed]);
    expect(await storedNet(store, config)).toEqual(await storedNet(fresh, config));

    // Other content again, in the block the ledger now has the log from: one block cannot hold both.
    const sameBlock = { ...changed, data: oS('0.8', 'other', 100n).data };
    await expect(a.appendCanonical([sameBlock])).rejects.toThrow(/is stored from block 100 .* with other content than the chain now has/);
    await expect(ingesterOn(store).reconcile({ from: 100n, to: 100n }, [sameBlock])).rejects.toThrow(LogConflict);
    // The same data under another event (topic0) is other content too.
    await expect(a.appendCanonical([{ ...changed, topics: [keccak256(stringToHex('another event'))] }])).rejects.toThrow(/with other content than the chain now has/);
    expect(await storedLogs(store, a.stream)).toHaveLength(3);
  });

  it('a log a reorg removed that is on chain again is recorded again, as a new event; a later reorg removes that one', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    const t1 = oS('0.6', 't1', 100n);
    await ingester.appendCanonical([t1]);
    expect(await ingester.reconcile({ from: 100n, to: 100n }, [])).toMatchObject({ removed: 1 });
    expect(await storedNet(store, config)).toEqual({});

    // Its transaction mined again a block later: recorded again (a restarted ingester, building its index from the stream).
    expect(await ingesterOn(store).appendCanonical([remined(t1, 101n)])).toMatchObject({ appended: 1, alreadyIngested: 0 });
    expect(await storedNet(store, config)).toEqual({ GME: '-0.6' });
    // Delivered again, by either ingester: already ingested.
    expect(await ingester.appendCanonical([remined(t1, 101n)])).toMatchObject({ appended: 0, alreadyIngested: 1 });
    expect(await ingesterOn(store).appendCanonical([remined(t1, 101n)])).toMatchObject({ appended: 0, alreadyIngested: 1 });

    // A second reorg drops it again, then the chain flips back to its first block: removed, recorded again, removed.
    expect(await ingester.reconcile({ from: 101n, to: 101n }, [])).toMatchObject({ removed: 1 });
    expect(await ingesterOn(store).reconcile({ from: 100n, to: 101n }, [t1])).toMatchObject({ appended: 1, removed: 0 });
    expect(await storedNet(store, config)).toEqual({ GME: '-0.6' });
    expect(await ingesterOn(store).reconcile({ from: 100n, to: 101n }, [])).toMatchObject({ removed: 1 });

    const entries = await storedLogs(store, ingester.stream);
    expect(marks(entries)).toEqual(['100:0', 'removed 100:0', '101:0', 'removed 101:0', '100:0', 'removed 100:0']);
    const ids: string[] = [];
    for await (const e of store.readStream(ingester.stream)) ids.push(e.id);
    expect(new Set(ids).size).toBe(6);
    expect(ids[2]).toBe(logRecordedAgainEventId(ids[1]!));
    expect(entries[3]!.logId).toBe(ids[2]); // each removal names the generation it compensates
    expect(entries[5]!.logId).toBe(ids[4]);
    expect(await storedNet(store, config)).toEqual({});
  });

  it('a log recorded again together with its clear pairs again; two ingesters racing to record it again write it once', async () => {
    const store = await memoryStore();
    const clear = clearBuy('2.5', 'clear again', 101n);
    await ingesterOn(store).appendCanonical([oS('0.6', 't0', 100n), ...clear]);
    await ingesterOn(store).reconcile({ from: 101n, to: 101n }, []);
    expect(await storedNet(store, config)).toEqual({ GME: '-0.6' });
    const [a, b] = [ingesterOn(store), ingesterOn(store)];
    await Promise.all([a.recentBlocks(), b.recentBlocks()]); // both index the stream as it is now
    const back = clear.map((log) => remined(log, 103n));
    const reports = await Promise.all([a.appendCanonical(back), b.appendCanonical(back)]);
    expect(reports.map((r) => r.appended).sort()).toEqual([0, 2]);
    expect(marks(await storedLogs(store, a.stream))).toEqual(['100:0', '101:0', '101:1', 'removed 101:0', 'removed 101:1', '103:0', '103:1']);
    expect(await storedNet(store, config)).toEqual({ AAPL: '2.5', GME: '-0.6' });
  });

  it('a log a reorg removed that the chain has again with other content, from another block, is recorded again; from the block it was removed from it is a conflict', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    const t1 = oS('0.6', 't1', 100n);
    await ingester.appendCanonical([t1]);
    await ingester.reconcile({ from: 100n, to: 100n }, []);
    const inRemovedBlock = { ...t1, data: oS('0.7', 'other', 100n).data };
    await expect(ingesterOn(store).appendCanonical([inRemovedBlock])).rejects.toThrow(/was stored, until a reorg removed it, from block 100 .* with other content than the chain now has at block 100/);
    const changed = { ...remined(t1, 101n), data: oS('0.7', 'other', 101n).data };
    expect(await ingesterOn(store).appendCanonical([changed])).toMatchObject({ appended: 1, removed: 0 });
    expect(marks(await storedLogs(store, ingester.stream))).toEqual(['100:0', 'removed 100:0', '101:0']);
    expect(await storedNet(store, config)).toEqual({ GME: '-0.7' });
  });

  it('a clear the chain re-mined behind another log (its indexes one higher: its ClearV2 where its AfterClear was) is removed and recorded again; positions equal the canonical chain\'s', async () => {
    const store = await memoryStore();
    const clear = clearBuy('2.5', 'moved clear', 101n);
    await ingesterOn(store).appendCanonical([oS('0.6', 't0', 100n), ...clear]);
    const take = oB('1', 'a take first', 101n, 0);
    const shifted = [remined(take), ...clear.map((log) => ({ ...remined(log), logIndex: log.logIndex + 1n }))];
    expect(await ingesterOn(store).reconcile({ from: 101n, to: 101n }, shifted)).toMatchObject({ removed: 2, appended: 3 });
    expect(marks(await storedLogs(store, ingesterOn(store).stream))).toEqual(['100:0', '101:0', '101:1', 'removed 101:0', 'removed 101:1', '101:0', '101:1', '101:2']);
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical([oS('0.6', 't0', 100n), ...shifted]);
    expect(await storedNet(store, config)).toEqual(await storedNet(fresh, config));
    expect(await storedNet(store, config)).toEqual({ AAPL: '2.5', GME: '0.4' });
  });

  it('a reorg that takes back a clear the chain had re-mined into a higher block, and a log mined at the clear\'s recorded height on the new fork, removes the clear\'s logs together: the fold takes its fill back', async () => {
    const store = await memoryStore();
    const t0 = oS('0.6', 't0', 100n);
    const clear = clearBuy('2.5', 'a clear moved up', 101n);
    await ingesterOn(store).appendCanonical([t0, ...clear]);
    // A reorg from block 101 re-mines the clear into block 103 (same logs: kept, recorded at 101:0 and 101:1) and
    // another account's take into the new block 101, at 101:0 too.
    const take = { ...oB('1', 'a take', 101n, 0), blockHash: keccak256(stringToHex('the second fork\'s block 101')) };
    expect(await ingesterOn(store).reconcile({ from: 101n, to: 103n }, [take, ...clear.map((log) => remined(log, 103n))])).toMatchObject({ removed: 0, appended: 1, alreadyIngested: 2 });
    expect(await storedNet(store, config)).toEqual({ AAPL: '2.5', GME: '0.4' });

    // A deeper reorg takes all of it back. By (block number, log index) alone the take's removal went between the clear's two.
    expect(await ingesterOn(store).reconcile({ from: 101n, to: 103n }, [])).toMatchObject({ removed: 3, appended: 0 });
    const removals = (await storedLogs(store, ingesterOn(store).stream)).filter((e) => e.type === 'OrderbookLogRemoved').map((e) => `${e.transactionHash === take.transactionHash ? 'take' : 'clear'}:${e.logIndex}`);
    expect(removals.join(' '), 'the clear\'s removals one after the other').toMatch(/clear:0 clear:1/);
    expect(await storedNet(store, config)).toEqual({ GME: '-0.6' });
  });

  it('ingest-file: a log a reorg removed is recorded again from another block, but not from the block it was removed from (the file predates the reorg)', async () => {
    const store = await memoryStore();
    const t1 = oS('0.6', 't1', 100n);
    await ingesterOn(store).ingest([t1]);
    await ingesterOn(store).reconcile({ from: 100n, to: 100n }, []);
    expect(await ingesterOn(store).ingest([t1])).toEqual({ appended: 0, alreadyIngested: 1, outOfOrder: 0, tokensRecorded: 0 });
    expect(await storedNet(store, config)).toEqual({});
    expect(await ingesterOn(store).ingest([remined(t1, 102n)])).toEqual({ appended: 1, alreadyIngested: 0, outOfOrder: 0, tokensRecorded: 0 });
    expect(marks(await storedLogs(store, ingesterOn(store).stream))).toEqual(['100:0', 'removed 100:0', '102:0']);
    expect(await storedNet(store, config)).toEqual({ GME: '-0.6' });
  });

  it('a reorg removing two clears recorded at the same places (one re-mined lower since, the other recorded there after it) removes each clear\'s logs together: the fold takes both back', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store);
    const first = clearBuy('2.2', 'first clear', 103n);
    await ingester.appendCanonical([oS('0.6', 't0', 100n), ...first]);
    // A reorg from block 101 re-mines the first clear into block 101 (kept: same logs) and mines another clear where it was.
    const second = clearBuy('1.8', 'second clear', 103n).map((log) => ({ ...remined(log), blockHash: keccak256(stringToHex('fork 2 block 103')) }));
    expect(await ingester.reconcile({ from: 101n, to: 103n }, [...first.map((log) => remined(log, 101n)), ...second])).toMatchObject({ removed: 0, appended: 2 });
    expect(await storedNet(store, config)).toEqual({ AAPL: '4', GME: '-0.6' });

    // A second reorg from block 101 drops both clears.
    expect(await ingester.reconcile({ from: 101n, to: 103n }, [])).toMatchObject({ removed: 4, appended: 0 });
    expect(await storedNet(store, config)).toEqual({ GME: '-0.6' });
  });

  it('a racer that falls behind its index while retrying appends nothing twice: it stops and follows the stream from its tail', async () => {
    const store = await memoryStore();
    const logs = Array.from({ length: 20 }, (_, i) => oS('0.01', `far ${i}`, 400n + BigInt(i)));
    const a = ingesterOn(store);
    let raced = false;
    // B's first append is refused (A got there first); meanwhile A runs on past B's index of 5 logs.
    const racing: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: async (stream: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) => {
        try {
          return await store.append(stream, events, expected);
        } catch (error) {
          if (!raced && stream === a.stream) await ((raced = true), a.appendCanonical(logs.slice(3)));
          throw error;
        }
      },
    });
    const b = ingesterOn(racing, { recentLogs: 5 });
    await b.recentBlocks(); // B's index: the empty stream
    await a.appendCanonical(logs.slice(0, 3));
    await expect(b.appendCanonical(logs.slice(0, 5))).rejects.toThrow(StreamMovedOn);
    b.forget();
    expect(await b.appendCanonical(logs.slice(15))).toMatchObject({ appended: 0, alreadyIngested: 5 });
    expect(marks(await storedLogs(store, a.stream))).toEqual(marks(await storedLogsOf(logs)));
  });

  it('two ingesters racing on one store append each log exactly once, in chain order', async () => {
    const store = await memoryStore();
    const logs = Array.from({ length: 40 }, (_, i) => oS('0.01', `race ${i}`, 200n + BigInt(Math.floor(i / 3)), i % 3));
    const [a, b, c] = [ingesterOn(store, { batchSize: 4 }), ingesterOn(store, { batchSize: 3 }), ingesterOn(store)];
    // Each delivers the chain in order, as a chain scan does, with its own chunking.
    const inChunks = async (ingester: Ingester, size: number) => {
      for (let i = 0; i < logs.length; i += size) await ingester.appendCanonical(logs.slice(i, i + size));
    };
    await Promise.all([inChunks(a, 13), inChunks(b, 7), c.ingest(logs.slice(0, 20)).then(() => c.ingest(logs))]);
    const stored = marks(await storedLogs(store, a.stream));
    expect(stored).toHaveLength(40);
    expect(stored).toEqual(marks(await storedLogsOf(logs)));
    expect(await storedNet(store, config)).toEqual({ GME: '-0.4' });
  });

  it('an ingester whose token stream another ingester moved on re-reads it and records the tokens of its next logs', async () => {
    const store = await memoryStore();
    const [a, b] = [ingesterOn(store), ingesterOn(store)];
    expect(await a.appendCanonical([oS('0.1', 'tokens a', 400n, 0, 'tGME')])).toMatchObject({ appended: 1, tokensRecorded: 2 });
    expect(await b.appendCanonical([oS('0.1', 'tokens b', 401n, 0, 'tAAPL')])).toMatchObject({ appended: 1, tokensRecorded: 1 });
    // a's view of the token stream ends before b's tAAPL: its next token is appended at a stale revision, and must be retried after a re-read.
    expect(await a.appendCanonical([oS('0.1', 'tokens c', 402n, 0, 'GME0x')])).toMatchObject({ appended: 1, tokensRecorded: 1 });
    expect(await storedNet(store, config)).toEqual({ GME: '-0.2', AAPL: '-0.1' });
  });

  it('a log a reorg removed before the index\'s tail, mined again later, is recorded again (not appended under its first id, which the store refuses for good)', async () => {
    const store = await memoryStore();
    const t1 = oS('0.6', 't1', 100n);
    await ingesterOn(store).appendCanonical([t1]);
    await ingesterOn(store).reconcile({ from: 100n, to: 100n }, []);
    // The ledger goes on: more logs than the index holds come after t1's removal.
    await ingesterOn(store).appendCanonical(Array.from({ length: 4 }, (_, i) => oB('0.1', `later ${i}`, 101n + BigInt(i))));
    // t1's transaction, back from the mempool, mined in a new block (above the index's floor).
    const ingester = ingesterOn(store, { recentLogs: 3 });
    expect(await ingester.appendCanonical([remined(t1, 110n)])).toMatchObject({ appended: 1 });
    expect(await storedNet(store, config)).toEqual({ GME: '-0.2' });
    expect(marks(await storedLogs(store, ingester.stream)).slice(-1)).toEqual(['110:0']);
  });

  it('… also for the ingester whose own appends pushed the removal out of its index', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store, { recentLogs: 3 });
    const t1 = oS('0.6', 't1', 100n);
    await ingester.appendCanonical([t1]);
    await ingester.reconcile({ from: 100n, to: 100n }, []);
    await ingester.appendCanonical(Array.from({ length: 4 }, (_, i) => oB('0.1', `later ${i}`, 101n + BigInt(i))));
    expect(await ingester.appendCanonical([remined(t1, 110n)])).toMatchObject({ appended: 1 });
    expect(await storedNet(store, config)).toEqual({ GME: '-0.2' });
  });

  it('a reorg whose removals of one transaction a crash cut between two batches, then a deeper reorg, still takes back that transaction\'s fills', async () => {
    const store = await memoryStore();
    const b = oB('1', 'b', 104n);
    // One transaction with two clears (ClearV2, AfterClear, ClearV2, AfterClear) in block 105.
    const a = [...clearBuy('2.5', 'a', 105n), ...clearBuy('1.5', 'a', 105n).map((log) => ({ ...log, logIndex: log.logIndex + 2n }))];
    await ingesterOn(store).appendCanonical([b, ...a]);
    expect(await storedNet(store, config)).toEqual({ AAPL: '4', GME: '1' });
    // A reorg drops block 105: its four removals go in batches of three, and the store fails the second append.
    await expect(ingesterOn(dyingStore(store, 2, 'before'), { batchSize: 3 }).reconcile({ from: 105n, to: 105n }, [])).rejects.toThrow('stopped before append 2');
    // Before the restart, the chain reorganises deeper: block 104 goes too. Nothing of either is on chain.
    expect(await ingesterOn(store).reconcile({ from: 104n, to: 105n }, [])).toMatchObject({ removed: 2 });
    expect(await storedNet(store, config)).toEqual({});
    expect(Object.fromEntries((await foldLedger(store, config)).rejectedByReason)).toEqual({});
  });

  it('a rescan below the indexed tail of the stream is refused', async () => {
    const store = await memoryStore();
    await ingesterOn(store).appendCanonical(Array.from({ length: 10 }, (_, i) => oS('0.1', `deep ${i}`, 300n + BigInt(i))));
    const restarted = ingesterOn(store, { recentLogs: 3 });
    // The index holds 307..309: every log before it is below 307.
    expect((await restarted.recentBlocks()).floor).toBe(307n);
    await expect(restarted.reconcile({ from: 306n, to: 320n }, [])).rejects.toThrow(ReorgTooDeep);
    expect(await restarted.reconcile({ from: 309n, to: 320n }, [])).toMatchObject({ removed: 1 });
  });

  it('a rescan of a block whose oldest log the index has dropped is refused, though the index still holds another log of that block', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store, { recentLogs: 3 });
    await ingester.appendCanonical([oS('0.1', 'evicted', 310n, 0), oS('0.1', 'kept', 310n, 1), oS('0.1', 'next', 311n, 0), oS('0.1', 'last', 312n, 0)]);
    // (310, 0) left the index: a rescan from 310 could not compensate it, were it orphaned.
    expect((await ingester.recentBlocks()).floor).toBe(311n);
    await expect(ingester.reconcile({ from: 310n, to: 320n }, [])).rejects.toThrow(ReorgTooDeep);
    expect(await ingester.reconcile({ from: 311n, to: 320n }, [])).toMatchObject({ removed: 2 });
  });

  /** A stream out of block order: k, recorded in 104, re-mined into 106 by a reorg that brought new logs into 101..103 (recorded after k). */
  async function keptAboveNewLogs(store: EventStore): Promise<RecordedLog> {
    const k = oS('0.5', 'k', 104n);
    await ingesterOn(store).appendCanonical([k]);
    const reorged = [oB('0.1', 'n1', 101n), oB('0.1', 'n2', 102n), oB('0.1', 'n3', 103n), remined(k, 106n)];
    expect(await ingesterOn(store).reconcile({ from: 101n, to: 106n }, reorged)).toMatchObject({ appended: 3, removed: 0 });
    return remined(k, 106n);
  }

  it('a restart whose index begins after a log a reorg kept in a higher block sets its floor above that log: a rescan of it is refused, not appended twice', async () => {
    const store = await memoryStore();
    const k = await keptAboveNewLogs(store);
    // The tail holds n1..n3: k, before it, was recorded in 104 and is on chain in 106.
    const restarted = ingesterOn(store, { recentLogs: 3 });
    expect((await restarted.recentBlocks()).floor).toBe(107n);
    await expect(restarted.reconcile({ from: 103n, to: 106n }, [oB('0.1', 'n3', 103n), k])).rejects.toThrow(ReorgTooDeep);
    await expect(restarted.appendCanonical([k])).rejects.toThrow(StreamMovedOn);
    expect(marks(await storedLogs(store, restarted.stream))).toEqual(['104:0', '101:0', '102:0', '103:0']);
  });

  it('… and so does the ingester whose own appends pushed that log out of its index, after a restart too', async () => {
    const store = await memoryStore();
    const ingester = ingesterOn(store, { recentLogs: 3 });
    await ingester.appendCanonical([oS('0.5', 'k', 104n)]);
    await ingester.reconcile({ from: 101n, to: 106n }, [oB('0.1', 'n1', 101n), oB('0.1', 'n2', 102n), oB('0.1', 'n3', 103n), remined(oS('0.5', 'k', 104n), 106n)]);
    // Recorded in 104, evicted: the chain has it in 106.
    expect((await ingester.recentBlocks()).floor).toBe(107n);
    expect((await ingesterOn(store, { recentLogs: 3 }).recentBlocks()).floor).toBe(107n);
  });

  it('a restart reads the logs before the index\'s tail once: the next one reads on from the mark it saved', async () => {
    const store = await memoryStore();
    await keptAboveNewLogs(store);
    let read = 0;
    const counting: EventStore = Object.assign(Object.create(store) as EventStore, {
      readStream: async function* (stream: string, options?: Parameters<EventStore['readStream']>[1]) {
        for await (const event of store.readStream(stream, options)) yield (read++, event);
      },
    });
    expect((await ingesterOn(counting, { recentLogs: 3 }).recentBlocks()).floor).toBe(107n);
    expect(read).toBe(1 + 3); // k, before the tail, then the tail
    await ingesterOn(store).appendCanonical([oB('0.1', 'n4', 108n), oB('0.1', 'n5', 109n)]);
    read = 0;
    expect((await ingesterOn(counting, { recentLogs: 3 }).recentBlocks()).floor).toBe(107n);
    expect(read).toBe(2 + 3); // n1 and n2, between the saved mark and the new tail (not k again), then the tail
  });
});

/** The logs as one ingester stores them alone: the reference order. */
async function storedLogsOf(logs: readonly RecordedLog[]): Promise<StoredEntry[]> {
  const store = await memoryStore();
  const ingester = ingesterOn(store);
  await ingester.appendCanonical(logs);
  return storedLogs(store, ingester.stream);
}

describe('chain ingestion settings', () => {
  const env = { LEDGER_ORDERBOOK: config.fills.orderbook, LEDGER_RPC_URL: 'https://base.example/v2/key' };

  it('decodes from the environment with defaults for Base', () => {
    const settings = ingesterSettings(loadConfig({ env: { ...env, LEDGER_RPC_URLS: 'wss://base.example/ws, http://127.0.0.1:8545', LEDGER_DEPLOYMENT_BLOCK: '27000000' } }), 'ingest');
    expect(settings).toMatchObject({
      chainId: 8453,
      rpcUrls: ['https://base.example/v2/key', 'wss://base.example/ws', 'http://127.0.0.1:8545'],
      deploymentBlock: 27_000_000n,
      confirmations: 10,
      pollIntervalMs: 1_000,
      concurrency: 4,
      maxBlockRange: 10_000,
      deadlineMs: 120_000,
    });
    expect(ingesterSettings(loadConfig({ env: { ...env, LEDGER_CONFIRMATIONS: 'finalized' } }), 'ingest').confirmations).toBe('finalized');
  });

  it('names every bad or missing value', () => {
    const bad = { LEDGER_RPC_URL: 'localhost:8545', LEDGER_CONFIRMATIONS: 'latest', LEDGER_CHAIN_POLL_INTERVAL_MS: '0' };
    expect(() => loadConfig({ env: bad })).toThrow(ConfigError);
    expect(() => loadConfig({ env: bad })).toThrow(/rpcUrl: expected an http\(s\) or ws\(s\) URL \([\s\S]*confirmations: expected a block count up to 10000, "safe" or "finalized", got "latest"[\s\S]*chainPollIntervalMs: expected a whole number of milliseconds from 1 to 2147483647, got 0/);
    expect(() => ingesterSettings(loadConfig({ env: {} }), 'ingest')).toThrow(/ingest needs orderbook[\s\S]*ingest needs rpcUrl/);
  });
});
