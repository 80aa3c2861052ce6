/** How a test's child script runs its main: exit 1 with the error on stderr, exit 2 if still running after `timeoutMs`. */
export function runChildMain(name: string, timeoutMs: number, main: (args: string[]) => Promise<void>): void {
  // A stuck child must not outlive the test that spawned it.
  setTimeout(() => {
    console.error(`${name}: timed out`);
    process.exit(2);
  }, timeoutMs).unref();
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
