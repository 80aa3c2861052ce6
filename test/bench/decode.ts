/**
 * Micro-benchmark of IOrderBookV4 log decoding: viem's generic `decodeEventLog` against the
 * hand-written `decodeOrderbookLog`, per event type. Run: `npx tsx test/bench/decode.ts`.
 * Each round times both decoders back to back over the same 64 logs (amounts varying). The
 * fastest round of each is printed: on a shared machine, neighbours only ever add time.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { decodeEventLog, encodeAbiParameters, type Hex } from 'viem';
import { AFTER_CLEAR_TOPIC, CLEAR_V2_TOPIC, TAKE_ORDER_V2_TOPIC, afterClearEvent, clearV2Event, decodeOrderbookLog, takeOrderV2Event } from '../../src/domain/orderbook-abi.ts';
import { OTHER_OWNER, OUR_OWNER, TOKEN, afterClearLog, clearV2Log, io, orderV3, takeOrderV2Log, type OrderSpec, type RawLog } from '../support/orderbook-logs.ts';
import { machine, printTable } from './machine.ts';

const ROUNDS = 25;
const LOGS_PER_ROUND = 2_048;
const VARIANTS = 64;

const E18 = 10n ** 18n;
const seller: OrderSpec = { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] };
const buyer: OrderSpec = { ...seller, owner: OTHER_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] };

/** An order closer to production: 1 KiB of bytecode, two IOs a side, random-looking vault ids. */
const heavyOrder = (spec: OrderSpec) => {
  const vaultId = 0x9f3c_77a1_0b2d_4e65_8c19_d0f2_3a4b_5c6d_7e8f_9012_3456_789a_bcde_f012_3456_789an;
  const ios = [{ token: TOKEN.USDC, decimals: 6, vaultId }, { token: TOKEN.tGME, decimals: 18, vaultId }];
  const order = orderV3(spec);
  return { ...order, evaluable: { ...order.evaluable, bytecode: `0x${'5b'.repeat(1024)}` as Hex }, validInputs: ios, validOutputs: ios };
};
const signedContext = [{ signer: OTHER_OWNER as Hex, context: [`0x${'11'.repeat(32)}`, `0x${'22'.repeat(32)}`] as Hex[], signature: `0x${'ab'.repeat(65)}` as Hex }];
const clearConfig = { aliceInputIOIndex: 0n, aliceOutputIOIndex: 1n, bobInputIOIndex: 1n, bobOutputIOIndex: 0n, aliceBountyVaultId: 7n, bobBountyVaultId: 7n };

interface Case {
  readonly name: string;
  /** The case's log with amounts varied by `i`. */
  readonly log: (i: bigint) => RawLog;
  readonly viem: (log: RawLog) => unknown;
}

const viemOf =
  (event: typeof clearV2Event | typeof afterClearEvent | typeof takeOrderV2Event, topic: Hex) =>
  (log: RawLog): unknown =>
    decodeEventLog({ abi: [event], topics: [topic], data: log.data }).args;

const cases: Case[] = [
  { name: 'AfterClear', log: (i) => afterClearLog({ aliceOutput: 2n * E18 + i, bobOutput: 50_000_000n + i, aliceInput: 50_000_000n + i, bobInput: 2n * E18 + i }), viem: viemOf(afterClearEvent, AFTER_CLEAR_TOPIC) },
  { name: 'TakeOrderV2', log: (i) => takeOrderV2Log(seller, { input: 2n * E18 + i, output: 160_155_077n + i }), viem: viemOf(takeOrderV2Event, TAKE_ORDER_V2_TOPIC) },
  { name: 'ClearV2', log: (i) => clearV2Log(seller, buyer, { aliceBountyVaultId: i, bobBountyVaultId: i }), viem: viemOf(clearV2Event, CLEAR_V2_TOPIC) },
  {
    name: 'TakeOrderV2 heavy',
    log: (i) => ({
      topics: [TAKE_ORDER_V2_TOPIC],
      data: encodeAbiParameters(takeOrderV2Event.inputs, [OTHER_OWNER, { order: heavyOrder(seller), inputIOIndex: 0n, outputIOIndex: 1n, signedContext }, 2n * E18 + i, 160_155_077n + i]),
    }),
    viem: viemOf(takeOrderV2Event, TAKE_ORDER_V2_TOPIC),
  },
  {
    name: 'ClearV2 heavy',
    log: (i) => ({ topics: [CLEAR_V2_TOPIC], data: encodeAbiParameters(clearV2Event.inputs, [OTHER_OWNER, heavyOrder(seller), heavyOrder(buyer), { ...clearConfig, aliceBountyVaultId: i }]) }),
    viem: viemOf(clearV2Event, CLEAR_V2_TOPIC),
  },
];

const hand = (log: RawLog): unknown => decodeOrderbookLog(log.topics, log.data);

/** µs per log of one round of `decode` over `logs`. */
function round(decode: (log: RawLog) => unknown, logs: readonly RawLog[]): number {
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < LOGS_PER_ROUND; i++) if (decode(logs[i % VARIANTS]!) !== undefined) sink++;
  const micros = ((performance.now() - start) * 1_000) / LOGS_PER_ROUND;
  if (sink !== LOGS_PER_ROUND) throw new Error('a decoder returned nothing');
  return micros;
}

/** The fastest round's µs per log of each decoder. */
function bench(logs: readonly RawLog[], viem: Case['viem']): { viem: number; hand: number } {
  if (logs.some((log) => decodeOrderbookLog(log.topics, log.data).event === null)) throw new Error('the hand decoder rejects a benchmark log');
  for (let i = 0; i < 3; i++) {
    round(viem, logs); // warm-up: let both get optimised
    round(hand, logs);
  }
  const times = Array.from({ length: ROUNDS }, () => [round(viem, logs), round(hand, logs)] as const);
  return { viem: Math.min(...times.map(([v]) => v)), hand: Math.min(...times.map(([, h]) => h)) };
}

console.log(`${machine()}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`fastest of ${ROUNDS} rounds of ${LOGS_PER_ROUND} decodes over ${VARIANTS} logs\n`);
const perSecond = (micros: number): string => Math.round(1e6 / micros).toLocaleString('en');
const rows = cases.map((c) => {
  const logs = Array.from({ length: VARIANTS }, (_, i) => c.log(BigInt(i)));
  const t = bench(logs, c.viem);
  return [c.name, (logs[0]!.data.length - 2) / 2, t.viem.toFixed(2), perSecond(t.viem), t.hand.toFixed(2), perSecond(t.hand), `${(t.viem / t.hand).toFixed(1)}x`];
});
printTable(rows, ['event', 'bytes', 'viem µs/log', 'viem logs/s', 'hand µs/log', 'hand logs/s', 'speed-up']);
