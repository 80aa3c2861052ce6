/**
 * A local anvil node for tests and the demo: spawned from node_modules on a free
 * 127.0.0.1 port, ready once it answers JSON-RPC, and never outliving this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Socket } from 'node:net';
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
  /** The node's process id (benchmarks read its CPU time). */
  readonly pid: number;
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
    pid: child.pid ?? 0,
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
  const child = spawn(command, [...args, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  try {
    await within(listening(child), READY_TIMEOUT_MS, `anvil did not start listening on port ${port}`);
    const answered = Number(await rpc<Hex>(`http://${HOST}:${port}`, 'eth_chainId', []));
    if (answered !== chainId) throw new Error(`anvil on port ${port} has chain id ${answered}, not ${chainId}`);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  // The node lives as long as this process wants it, but does not keep it alive.
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as Socket | null)?.unref();
  return child;
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

/**
 * Resolves when anvil's stdout says it listens: proof that our child bound the port,
 * which an RPC probe is not (another node may hold it). Rejects if it dies first.
 * The listeners stay, draining both pipes so a chatty node never blocks on them.
 */
function listening(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout = (stdout + chunk).slice(-1024);
      if (stdout.includes('Listening on ')) resolve();
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    child.once('error', (error) => reject(new Error(`anvil failed to start: ${error.message}`)));
    // 'close' rather than 'exit': stderr has been read to the end by then.
    child.once('close', (code, signal) => reject(new Error(`anvil exited (${code ?? signal}): ${stderr.trim()}`)));
  });
}

async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const isAddressInUse = (error: unknown): boolean => error instanceof Error && /address already in use/i.test(error.message);

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

/** Keeps the signal's default (dying), killing the nodes first, unless the app handles it: then it stops them in its own order. */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 0) return;
  killAll();
  process.kill(process.pid, signal);
}
