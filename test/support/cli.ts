/** The repository's root and example ledger, and the real `hedge-ledger` binary run as a child process. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logsInChainOrder, scanLogFile, type FileScan, type ScanOptions } from '../../src/cli/commands/ingest-file.ts';
import type { RecordedLog } from '../../src/chain/rpc-log.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const EXAMPLE = join(ROOT, 'docs', 'example');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/hedge-ledger.js` with `args` (logs at warn unless `env` says otherwise) in `cwd` (the repository's root unless given); resolves with its exit code, failing or not. */
export function runCli(args: readonly string[], { env = {}, timeoutMs = 0, cwd = ROOT }: { env?: Readonly<Record<string, string>>; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin', 'hedge-ledger.js'), ...args],
      { cwd, env: { ...process.env, LEDGER_LOG_LEVEL: 'warn', ...env }, timeout: timeoutMs },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A small log file's scan and all its logs, in chain order, as ingest-file reads them. */
export async function readLogFile(path: string, chainId: number, orderbook: string, report: (line: number, problem: string) => void = () => undefined, options: ScanOptions = {}): Promise<Omit<FileScan, 'logs'> & { readonly logs: RecordedLog[] }> {
  const scan = await scanLogFile(path, chainId, orderbook, report, options);
  const logs: RecordedLog[] = [];
  for await (const delivery of logsInChainOrder(scan)) logs.push(...delivery);
  return { ...scan, logs };
}
