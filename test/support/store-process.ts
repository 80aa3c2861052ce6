/** Runs test/support/store-child.ts in its own OS process (see there for the commands). */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ROOT } from './cli.ts';

const SCRIPT = fileURLToPath(new URL('./store-child.ts', import.meta.url));

export class StoreChild {
  private readonly child: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private readonly exit: Promise<number | null>;

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: ROOT });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exit = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', resolve);
    });
  }

  /** Resolves once the child printed `ready` (its store is open); rejects if it exits first. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.stdout.split('\n').includes('ready')) resolve();
      };
      this.child.stdout.on('data', check);
      check();
      void this.exit.then(() => reject(new Error(`store child exited before it was ready: ${this.stderr}`)), reject);
    });
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** The JSON the child printed last; rejects with its stderr when it failed. */
  async result<T>(): Promise<T> {
    const code = await this.exit;
    if (code !== 0) throw new Error(`store child exited with ${code}: ${this.stderr}`);
    const last = this.stdout.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as T;
  }
}

export const runChild = <T>(args: readonly string[]): Promise<T> => new StoreChild(args).result<T>();
