/**
 * A local anvil node for tests and the demo: spawned from node_modules on a free
 * 127.0.0.1 port, ready once it answers JSON-RPC, and never outliving this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Hex, RpcTransactionRequest } from 'viem';

export interface AnvilOptions {
  /** Seconds between blocks (interval mining); default automine, one block per transaction. */
  readonly blockTime?: number;
  /** Fixed port; default a free one. */
  readonly port?: number;
  /** Default 31337. */
  readonly chainId?: number;
}

/** A transaction to mine into a replacement block during `reorg`. */
export interface ReorgTx {
  /** A raw signed transaction (keeps its hash) or a request from an unlocked dev account. */
  readonly tx: Hex | RpcTransactionRequest;
  /** Which replacement block: 0 is the first (lowest) one. */
  readonly blockOffset: number;
}

export interface Anvil {
  readonly rpcUrl: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly chainId: number;
  /** A raw JSON-RPC call; rejects with the node's error message. */
  request<T = unknown>(method: string, params?: readonly unknown[]): Promise<T>;
  /**
   * `anvil_reorg` with params `[depth, [[tx, blockOffset], …]]` (verified on anvil 1.7.1):
   * rewinds the last `depth` blocks, drops their transactions, and mines `depth` new
   * blocks at the same heights with new hashes, each listed tx in block `blockOffset`.
   * Replacement txs invalid against the rewound state (a stale nonce) are silently dropped.
   */
  reorg(depth: number, txs?: readonly ReorgTx[]): Promise<void>;
  /** `anvil_rollback` with params `[depth]`: removes the last `depth` blocks, so the height shrinks. */
  rollback(depth: number): Promise<void>;
  /** Kills the node and resolves once it has exited; idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_CHAIN_ID = 31337;
const HOST = '127.0.0.1';
const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;

export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const chainId = options.chainId ?? DEFAULT_CHAIN_ID;
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      const child = await launch(port, chainId, options.blockTime);
      return handle(child, port, chainId);
    } catch (error) {
      // Another process may take the probed port before anvil binds it.
      const retry = options.port === undefined && attempt < PORT_ATTEMPTS && isAddressInUse(error);
      if (!retry) throw error;
    }
  }
}

function handle(child: ChildProcess, port: number, chainId: number): Anvil {
  const rpcUrl = `http://${HOST}:${port}`;
  const request = <T>(method: string, params: readonly unknown[] = []) => rpc<T>(rpcUrl, method, params);
  return {
    rpcUrl,
    wsUrl: `ws://${HOST}:${port}`,
    port,
    chainId,
    request,
    reorg: async (depth, txs = []) => {
      await request('anvil_reorg', [depth, txs.map((t) => [t.tx, t.blockOffset])]);
    },
    rollback: async (depth) => {
      await request('anvil_rollback', [depth]);
    },
    stop: () => stopChild(child),
  };
}

/** The OS picks a free port; it is released for anvil, hence the retry in `startAnvil`. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function launch(port: number, chainId: number, blockTime: number | undefined): Promise<ChildProcess> {
  const { command, args } = anvilCommand();
  const flags = ['--host', HOST, '--port', String(port), '--chain-id', String(chainId)];
  if (blockTime !== undefined) flags.push('--block-time', String(blockTime));
  // stdout is a per-transaction chatter nobody reads; stderr explains failures.
  const child = spawn(command, [...args, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  const failure = watch(child);
  try {
    await waitUntilReady(`http://${HOST}:${port}`, chainId, failure);
    return child;
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/**
 * The platform binary that `@foundry-rs/anvil`'s bin.mjs would spawn, run directly to
 * spare a node wrapper process (which a SIGKILL would orphan the binary from).
 * Falls back to the wrapper when the platform package is missing.
 */
export function anvilCommand(): { command: string; args: string[] } {
  const wrapperJson = createRequire(import.meta.url).resolve('@foundry-rs/anvil/package.json');
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const binary = process.platform === 'win32' ? 'anvil.exe' : 'anvil';
  try {
    const path = createRequire(wrapperJson).resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/${binary}`);
    if (existsSync(path)) return { command: path, args: [] };
  } catch {
    // no platform package: use the wrapper
  }
  return { command: process.execPath, args: [join(dirname(wrapperJson), 'bin.mjs')] };
}

async function waitUntilReady(url: string, chainId: number, failure: () => string | undefined): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const failed = failure();
    if (failed !== undefined) throw new Error(failed);
    const answered = await rpc<Hex>(url, 'eth_chainId', []).catch(() => undefined);
    if (answered !== undefined) {
      if (Number(answered) !== chainId) throw new Error(`anvil at ${url} has chain id ${Number(answered)}, not ${chainId}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`anvil did not answer on ${url} within ${READY_TIMEOUT_MS} ms`);
}

const isAddressInUse = (error: unknown): boolean => error instanceof Error && /address already in use/i.test(error.message);

/**
 * Why the child is gone (failed to spawn, or exited with the tail of its stderr), or
 * undefined while it runs. Draining stderr also keeps a chatty anvil from blocking.
 */
function watch(child: ChildProcess): () => string | undefined {
  let stderr = '';
  let failure: string | undefined;
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  child.once('error', (error) => {
    failure = `anvil failed to start: ${error.message}`;
  });
  // 'close' rather than 'exit': stderr has been read to the end by then.
  child.once('close', (code, signal) => {
    failure ??= `anvil exited (${code ?? signal}): ${stderr.trim()}`;
  });
  return () => failure;
}

let nextId = 1;

async function rpc<T>(url: string, method: string, params: readonly unknown[]): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

async function stopChild(child: ChildProcess): Promise<void> {
  const gone = child.pid === undefined || child.exitCode !== null || child.signalCode !== null;
  if (gone) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(escalate);
}

// Every running anvil, killed synchronously when this process exits or is signalled.
const running = new Set<ChildProcess>();
let hooked = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => onSignal(signal));
}

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Kills the nodes, then keeps the signal's default (dying) unless the app handles it itself. */
function onSignal(signal: NodeJS.Signals): void {
  killAll();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
