/**
 * Deploys the test orderbook and tokens to a devnet, and a Trader that emits fills of
 * our orders with the exact IOrderBookV4 log semantics (spec/orderbook-v4.md).
 */
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  encodeAbiParameters,
  encodeFunctionData,
  getAddress,
  http,
  keccak256,
  parseAbi,
  parseAbiParameters,
  TransactionReceiptNotFoundError,
  type Abi,
  type Account,
  type Address,
  type Chain,
  type ContractFunctionArgs,
  type EncodeFunctionDataParameters,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem';
import { setTimeout as sleep } from 'node:timers/promises';
import { privateKeyToAccount } from 'viem/accounts';
import { compileContracts } from './compile.ts';

/** Anvil's first default account: deploys, takes and clears. */
export const DEV_PRIVATE_KEY: Hex = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

/** The ABI of TestOrderBook.sol, typed for viem; a test checks it against the compiled one. */
export const orderbookAbi = parseAbi([
  'struct IO { address token; uint8 decimals; uint256 vaultId; }',
  'struct EvaluableV3 { address interpreter; address store; bytes bytecode; }',
  'struct OrderV3 { address owner; EvaluableV3 evaluable; IO[] validInputs; IO[] validOutputs; bytes32 nonce; }',
  'struct ClearConfig { uint256 aliceInputIOIndex; uint256 aliceOutputIOIndex; uint256 bobInputIOIndex; uint256 bobOutputIOIndex; uint256 aliceBountyVaultId; uint256 bobBountyVaultId; }',
  'struct ClearStateChange { uint256 aliceOutput; uint256 bobOutput; uint256 aliceInput; uint256 bobInput; }',
  'struct SignedContextV1 { address signer; bytes32[] context; bytes signature; }',
  'struct TakeOrderConfigV3 { OrderV3 order; uint256 inputIOIndex; uint256 outputIOIndex; SignedContextV1[] signedContext; }',
  'struct Clear { OrderV3 alice; OrderV3 bob; ClearConfig clearConfig; ClearStateChange clearStateChange; }',
  'event ClearV2(address sender, OrderV3 alice, OrderV3 bob, ClearConfig clearConfig)',
  'event AfterClear(address sender, ClearStateChange clearStateChange)',
  'event TakeOrderV2(address sender, TakeOrderConfigV3 config, uint256 input, uint256 output)',
  'function takeOrder(TakeOrderConfigV3 config, uint256 input, uint256 output)',
  'function takeOrders(TakeOrderConfigV3[] configs, uint256[] inputs, uint256[] outputs)',
  'function clear(OrderV3 alice, OrderV3 bob, ClearConfig clearConfig, ClearStateChange clearStateChange)',
  'function clearMany(Clear[] clears)',
  'function emitClearV2(OrderV3 alice, OrderV3 bob, ClearConfig clearConfig)',
  'function emitAfterClear(ClearStateChange clearStateChange)',
]);

type OrderbookAbi = typeof orderbookAbi;
export type TakeOrderConfigV3 = ContractFunctionArgs<OrderbookAbi, 'nonpayable', 'takeOrder'>[0];
export type OrderV3 = TakeOrderConfigV3['order'];
export type ClearArgs = ContractFunctionArgs<OrderbookAbi, 'nonpayable', 'clear'>;

/** Every token the devnet deploys, with its decimals; `BrokenToken`'s symbol() reverts. */
export const DEV_TOKENS = {
  USDC: 6,
  tGME: 18,
  GME0x: 18,
  GMEs1: 18,
  tAAPL: 18,
  AAPL0x: 18,
  tSPLG: 18,
  WETH: 18,
  BrokenToken: 18,
} as const;
export type DevTokenName = keyof typeof DEV_TOKENS;

export interface DevToken {
  readonly address: Address;
  readonly decimals: number;
}

export interface DevnetDeployment {
  readonly chainId: number;
  readonly orderbook: Address;
  readonly tokens: Readonly<Record<DevTokenName, DevToken>>;
  /** Block of the first deployment: where ingestion can start. */
  readonly deploymentBlock: bigint;
}

export interface DevnetClients {
  readonly publicClient: PublicClient<Transport, Chain>;
  readonly walletClient: WalletClient<Transport, Chain, Account>;
}

/** Clients on the devnet, the wallet being `DEV_PRIVATE_KEY`'s account. */
export function devnetClients(rpcUrl: string, chainId: number): DevnetClients {
  const chain = defineChain({
    id: chainId,
    name: 'devnet',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  // Blocks are instant (automine) or seconds apart: poll receipts far faster than viem's 4 s default,
  // and never answer from viem's block-number cache — a reorg or a fresh block must be seen at once.
  const transport = http(rpcUrl);
  return {
    publicClient: createPublicClient({ chain, transport, pollingInterval: 50, cacheTime: 0 }),
    walletClient: createWalletClient({ chain, transport, account: privateKeyToAccount(DEV_PRIVATE_KEY), pollingInterval: 50 }),
  };
}

export async function deployDevnet(rpcUrl: string): Promise<DevnetDeployment> {
  const artifacts = await compileContracts();
  const chainId = await createPublicClient({ transport: http(rpcUrl) }).getChainId();
  const { publicClient, walletClient } = devnetClients(rpcUrl, chainId);
  const deploy = (abi: Abi, bytecode: Hex, args: readonly unknown[] = []) =>
    walletClient.deployContract({ abi, bytecode, args });
  // Sent one by one (each send picks the next nonce), mined concurrently.
  const names = Object.keys(DEV_TOKENS) as DevTokenName[];
  const hashes: Hex[] = [await deploy(artifacts.TestOrderBook.abi, artifacts.TestOrderBook.bytecode)];
  for (const name of names) {
    const { abi, bytecode } = name === 'BrokenToken' ? artifacts.BrokenToken : artifacts.TestToken;
    hashes.push(await deploy(abi, bytecode, name === 'BrokenToken' ? [] : [`Test ${name}`, name, DEV_TOKENS[name]]));
  }
  const receipts = await Promise.all(hashes.map((hash) => confirmed(publicClient, hash)));
  const address = (receipt: TransactionReceipt): Address => {
    if (!receipt.contractAddress) throw new Error(`deployment ${receipt.transactionHash} created no contract`);
    return getAddress(receipt.contractAddress);
  };
  const [orderbookReceipt, ...tokenReceipts] = receipts;
  const tokens = Object.fromEntries(
    names.map((name, i) => [name, { address: address(tokenReceipts[i]!), decimals: DEV_TOKENS[name] }]),
  ) as Record<DevTokenName, DevToken>;
  return { chainId, orderbook: address(orderbookReceipt!), tokens, deploymentBlock: orderbookReceipt!.blockNumber };
}

/**
 * Polls for the receipt rather than viem's waitForTransactionReceipt, which looks again only when a new
 * block comes: on automine the next block waits for our next transaction, so a receipt that anvil (busy)
 * did not answer yet at its first looks was waited for until viem's 180 s timeout, and the demo failed.
 */
async function confirmed(publicClient: PublicClient, hash: Hex): Promise<TransactionReceipt> {
  const deadline = Date.now() + RECEIPT_TIMEOUT_MS;
  for (;;) {
    const receipt = await publicClient.getTransactionReceipt({ hash }).catch((e: unknown) => {
      if (e instanceof TransactionReceiptNotFoundError) return undefined;
      throw e;
    });
    if (receipt !== undefined) {
      if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
      return receipt;
    }
    if (Date.now() > deadline) throw new Error(`transaction ${hash}: no receipt after ${RECEIPT_TIMEOUT_MS / 1000} s`);
    await sleep(RECEIPT_POLL_MS);
  }
}

const RECEIPT_POLL_MS = 50;
const RECEIPT_TIMEOUT_MS = 180_000;

// ── Fills of our orders ──────────────────────────────────────────────────────────────

/**
 * One fill of an order owned by `owner`, seen from THAT ORDER (ours when `owner` is one
 * of our owners): `sell` = the order gave `shares` of equity and received `usdc`;
 * `buy` = it received `shares` and gave `usdc`. Amounts are in token units.
 */
export interface Fill {
  readonly owner: Address;
  readonly side: 'sell' | 'buy';
  readonly equityToken: DevTokenName;
  readonly shares: bigint;
  readonly usdc: bigint;
  /** The token of the `usdc` leg; default USDC (another makes the fill non-hedgeable). */
  readonly quoteToken?: DevTokenName;
}

/** Alice's and Bob's fills of one clear; a real clear has them on opposite sides. */
export interface ClearFill {
  readonly alice: Fill;
  readonly bob: Fill;
}

// Every order lists [quote, equity] as both its inputs and its outputs, as Raindex
// orders do; the IO indices of a fill then pick the side (spec worked examples).
const QUOTE_IO = 0n;
const EQUITY_IO = 1n;
const VAULT_ID = 1n;
// Never evaluated; non-empty bytecode so decoders walk a real dynamic field.
const EVALUABLE = {
  interpreter: '0x0000000000000000000000000000000000000001',
  store: '0x0000000000000000000000000000000000000002',
  bytecode: '0xdeadbeef',
} as const;

/** The order of `owner` trading this pair; its nonce is fixed so its hash is stable. */
export function orderFor(deployment: DevnetDeployment, fill: Fill): OrderV3 {
  const quote = deployment.tokens[fill.quoteToken ?? 'USDC'];
  const equity = deployment.tokens[fill.equityToken];
  const ios = [quote, equity].map((t) => ({ token: t.address, decimals: t.decimals, vaultId: VAULT_ID }));
  const nonce = keccak256(encodeAbiParameters(parseAbiParameters('address, address, address'), [fill.owner, quote.address, equity.address]));
  return { owner: fill.owner, evaluable: EVALUABLE, validInputs: ios, validOutputs: ios, nonce };
}

/** The order's IO indices and amounts: input is what the order received, output what it gave. */
function orderLegs(fill: Fill) {
  return fill.side === 'sell'
    ? { inputIOIndex: QUOTE_IO, outputIOIndex: EQUITY_IO, received: fill.usdc, gave: fill.shares }
    : { inputIOIndex: EQUITY_IO, outputIOIndex: QUOTE_IO, received: fill.shares, gave: fill.usdc };
}

/**
 * `takeOrder` arguments. TakeOrderV2's `input`/`output` are the TAKER's: the taker's
 * input is what our order gave, the taker's output what our order received.
 */
export function takeArgs(deployment: DevnetDeployment, fill: Fill): readonly [TakeOrderConfigV3, bigint, bigint] {
  const { inputIOIndex, outputIOIndex, received, gave } = orderLegs(fill);
  const config = { order: orderFor(deployment, fill), inputIOIndex, outputIOIndex, signedContext: [] };
  return [config, gave, received];
}

/** `clear` arguments. AfterClear's amounts are each order's own: `*Input` received, `*Output` gave. */
export function clearArgs(deployment: DevnetDeployment, { alice, bob }: ClearFill): ClearArgs {
  const a = orderLegs(alice);
  const b = orderLegs(bob);
  const clearConfig = {
    aliceInputIOIndex: a.inputIOIndex,
    aliceOutputIOIndex: a.outputIOIndex,
    bobInputIOIndex: b.inputIOIndex,
    bobOutputIOIndex: b.outputIOIndex,
    aliceBountyVaultId: VAULT_ID,
    bobBountyVaultId: VAULT_ID,
  };
  const change = { aliceOutput: a.gave, bobOutput: b.gave, aliceInput: a.received, bobInput: b.received };
  return [orderFor(deployment, alice), orderFor(deployment, bob), clearConfig, change];
}

/** Sends fills to the test orderbook, one transaction per call; resolves with the mined receipt. */
export interface Trader {
  /** One TakeOrderV2. */
  take(fill: Fill): Promise<TransactionReceipt>;
  /** One TakeOrderV2 per fill, in order, in one transaction (~19k gas each: up to ~800 per tx). */
  takeMany(fills: readonly Fill[]): Promise<TransactionReceipt>;
  /** ClearV2 then AfterClear. */
  clear(fill: ClearFill): Promise<TransactionReceipt>;
  /** A ClearV2/AfterClear pair per fill, in order, in one transaction. */
  clearMany(fills: readonly ClearFill[]): Promise<TransactionReceipt>;
}

export function createTrader(rpcUrl: string, deployment: DevnetDeployment): Trader {
  const { publicClient, walletClient } = devnetClients(rpcUrl, deployment.chainId);
  // Sends are serialised so concurrent calls never race for a nonce; mining is awaited outside.
  let sending: Promise<unknown> = Promise.resolve();
  const send = async (data: Hex) => {
    const hash = sending.then(() => walletClient.sendTransaction({ to: deployment.orderbook, data }));
    sending = hash.catch(() => undefined);
    return confirmed(publicClient, await hash);
  };
  const call = (request: EncodeFunctionDataParameters<OrderbookAbi>) => send(encodeFunctionData(request));
  return {
    take: (fill) => call({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(deployment, fill) }),
    takeMany: (fills) => {
      const all = fills.map((f) => takeArgs(deployment, f));
      const args = [all.map((t) => t[0]), all.map((t) => t[1]), all.map((t) => t[2])] as const;
      return call({ abi: orderbookAbi, functionName: 'takeOrders', args });
    },
    clear: (fill) => call({ abi: orderbookAbi, functionName: 'clear', args: clearArgs(deployment, fill) }),
    clearMany: (fills) => {
      const clears = fills.map((f) => {
        const [alice, bob, clearConfig, clearStateChange] = clearArgs(deployment, f);
        return { alice, bob, clearConfig, clearStateChange };
      });
      return call({ abi: orderbookAbi, functionName: 'clearMany', args: [clears] });
    },
  };
}
