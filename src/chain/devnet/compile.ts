/**
 * Compiles the devnet contracts with solc-js, caching abi + bytecode on disk keyed by
 * a hash of everything that affects the output, so test runs only pay for solc
 * (about a second, mostly loading soljson) when a contract changes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Abi, Hex } from 'viem';

export const CONTRACT_NAMES = ['TestOrderBook', 'TestToken', 'BrokenToken'] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface Artifact {
  readonly abi: Abi;
  readonly bytecode: Hex;
}
export type Artifacts = Readonly<Record<ContractName, Artifact>>;

export interface CompileOptions {
  /** Where artifacts are cached; default `node_modules/.cache/hedge-ledger-contracts/` of this checkout. */
  readonly cacheDir?: string;
}

const require = createRequire(import.meta.url);
const CONTRACTS_DIR = fileURLToPath(new URL('./contracts/', import.meta.url));
// Beside the node_modules that holds solc, so the cache does not depend on the cwd.
const DEFAULT_CACHE_DIR = join(dirname(dirname(require.resolve('solc/package.json'))), '.cache', 'hedge-ledger-contracts');

// Pinned rather than solc's default so a newer solc cannot emit opcodes the node lacks.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
} as const;

interface StandardInput {
  readonly language: 'Solidity';
  readonly sources: Record<string, { content: string }>;
  readonly settings: typeof SETTINGS;
}

interface StandardOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
}

let memo: Promise<Artifacts> | undefined;

/** Compiles (or loads from cache) the contracts; memoised per process for the default cache dir. */
export function compileContracts(options: CompileOptions = {}): Promise<Artifacts> {
  if (options.cacheDir !== undefined) return compileCached(options.cacheDir);
  memo ??= compileCached(DEFAULT_CACHE_DIR);
  return memo;
}

async function compileCached(cacheDir: string): Promise<Artifacts> {
  const input = await standardInput();
  const file = join(cacheDir, `${cacheKey(input)}.json`);
  const cached = await readCache(file);
  if (cached) return cached;
  const artifacts = await runSolc(input);
  await writeAtomically(file, JSON.stringify(artifacts));
  return artifacts;
}

async function standardInput(): Promise<StandardInput> {
  const names = (await readdir(CONTRACTS_DIR)).filter((f) => f.endsWith('.sol')).sort();
  const contents = await Promise.all(names.map((n) => readFile(join(CONTRACTS_DIR, n), 'utf8')));
  const sources = Object.fromEntries(names.map((n, i) => [n, { content: contents[i]! }]));
  return { language: 'Solidity', sources, settings: SETTINGS };
}

/** The solc version comes from its package.json, which is cheap, unlike loading soljson. */
function cacheKey(input: StandardInput): string {
  const { version } = require('solc/package.json') as { version: string };
  return createHash('sha256').update(version).update(JSON.stringify(input)).digest('hex').slice(0, 32);
}

async function readCache(file: string): Promise<Artifacts | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Artifacts;
  } catch {
    return undefined;
  }
}

/** Parallel test workers may compile at once: each writes a private temp file, then renames. */
async function writeAtomically(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  await writeFile(temp, content);
  await rename(temp, file);
}

async function runSolc(input: StandardInput): Promise<Artifacts> {
  const { default: solc } = await import('solc');
  const output = JSON.parse(solc.compile(JSON.stringify(input)) as string) as StandardOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const byName = new Map(Object.values(output.contracts ?? {}).flatMap((file) => Object.entries(file)));
  const artifact = (name: ContractName): Artifact => {
    const compiled = byName.get(name);
    if (!compiled) throw new Error(`solc produced no contract ${name}`);
    return { abi: compiled.abi, bytecode: `0x${compiled.evm.bytecode.object}` };
  };
  return Object.fromEntries(CONTRACT_NAMES.map((n) => [n, artifact(n)])) as Record<ContractName, Artifact>;
}
