/** Spawns a TypeScript entry point (through tsx) as its own OS process, to be awaited or SIGKILLed. */
import { spawn } from 'node:child_process';
import { ROOT } from './cli.ts';

export interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Spawned {
  readonly pid: number | undefined;
  readonly exited: Promise<Exited>;
  kill(): Promise<Exited>;
}

/** `script` is relative to the repository root; `env` adds to this process's environment. */
export function spawnTsx(script: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Exited>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    pid: child.pid,
    exited,
    kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Waits for a clean exit and returns stdout; throws with stderr otherwise. */
export async function succeeded(spawned: Spawned): Promise<string> {
  const { code, stdout, stderr } = await spawned.exited;
  if (code !== 0) throw new Error(`child exited with ${code}:\n${stderr}`);
  return stdout;
}
