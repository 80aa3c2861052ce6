/**
 * schwab-sim: the Schwab simulator as a process, on a clock that follows the wall clock,
 * until SIGINT or SIGTERM. It takes the app key, secret, callback and account number from the
 * same settings as `auth` and `run --broker schwab`, so those work against it unchanged.
 */
import { configFrom, parse, UsageError } from '../context.ts';
import { settings } from '../../config.ts';
import { createSimClock, startSchwabSim, type SchwabSimOptions } from '../../broker/schwab-sim/index.ts';
import { hostPort } from '../../host-port.ts';

function portOf(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65_535)) throw new UsageError(`--port must be a TCP port number (got ${JSON.stringify(text)})`);
  return port;
}

/** As the HTTP API's httpHost: node binds every interface for an empty host, where the default is 127.0.0.1. */
function hostOf(text: string): string {
  const { codec } = settings.httpHost;
  if (!codec.is(text)) throw new UsageError(`--host must be ${codec.name}, got ${JSON.stringify(text)}`);
  return text;
}

function startOf(text: string | undefined): Date {
  const start = text === undefined ? new Date() : new Date(text);
  if (Number.isNaN(start.getTime())) throw new UsageError(`--start must be an ISO time such as 2025-09-10T14:00:00Z (got ${JSON.stringify(text)})`);
  return start;
}

const untilSignal = (): Promise<string> =>
  new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });

export async function schwabSim(argv: string[]): Promise<void> {
  const { values } = parse(argv, { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' }, start: { type: 'string' }, 'always-open': { type: 'boolean', default: false } });
  const config = configFrom(values);
  const appSecret = process.env['SCHWAB_APP_SECRET']?.trim(); // as the adapter reads it (readSecret), so a trailing newline cannot make them disagree
  const options: SchwabSimOptions = {
    port: portOf(values.port),
    host: hostOf(values.host),
    clock: createSimClock({ start: startOf(values.start), followWallClock: true }),
    callbackUrl: config.schwabCallbackUrl,
    ...(config.schwabAppKey === undefined ? {} : { appKey: config.schwabAppKey }),
    ...(appSecret === undefined || appSecret === '' ? {} : { appSecret }),
    ...(config.schwabAccountNumber === undefined ? {} : { accountNumber: config.schwabAccountNumber }),
  };
  const sim = await startSchwabSim(options).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw new Error(`cannot listen on ${hostPort(options.host!, options.port!)}: the port is in use (EADDRINUSE): stop what holds it, or give another --port (0, the default, picks a free one)`, { cause: error });
  });
  if (values['always-open']) sim.control.setMarketOpen(true);
  const hours = values['always-open'] ? 'market pinned open' : 'New York market hours';
  process.stdout.write(
    [
      `Schwab simulator listening on ${sim.baseUrl} (sim time ${sim.clock.now().toISOString()}, ${hours})`,
      `  export SCHWAB_BASE_URL=${sim.baseUrl}`,
      `  app key ${config.schwabAppKey ?? 'sim-app-key'}${appSecret ? '' : ', app secret sim-app-secret'}, callback ${config.schwabCallbackUrl}, account ${sim.account.accountNumber}`,
      `  log in: hedge-ledger auth login, then paste the Location of: curl -si '<the printed URL>' | grep -i ^location`,
      `  control API: ${sim.baseUrl}/__control/ (counters, orders, clock, faults…); Ctrl-C stops`,
      '',
    ].join('\n'),
  );
  const signal = await untilSignal();
  await sim.stop();
  process.stdout.write(`schwab-sim: stopped on ${signal}\n`);
}
