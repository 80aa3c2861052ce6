/**
 * Progress of long work: a one-line bar on a TTY (stderr); elsewhere (a container, a pipe) a
 * log line at most every `everyMs`, so long runs still say how far they are and stdout stays clean.
 */
import { beforeLogLine, logger, type Logger } from '../log.ts';

export interface Progress {
  /** `detail` (e.g. another rate) is shown after the rate and ETA. */
  update(done: number, total?: number, detail?: string): void;
  finish(): void;
}

interface Options {
  readonly stream?: Pick<NodeJS.WriteStream, 'isTTY' | 'write'>;
  readonly log?: Pick<Logger, 'info'>;
  readonly everyMs?: number;
  readonly now?: () => number;
}

export function progress(label: string, options: Options = {}): Progress {
  const { stream = process.stderr, now = () => performance.now() } = options;
  const started = now();
  const measure = (done: number, total?: number) => {
    const seconds = (now() - started) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    const etaSeconds = total && rate > 0 ? Math.max(0, Math.round((total - done) / rate)) : undefined;
    return { rate, etaSeconds };
  };
  const throttled = (everyMs: number, draw: (done: number, total?: number, detail?: string) => void): Progress['update'] => {
    let last = -Infinity;
    return (done, total, detail) => {
      if (now() - last < everyMs) return;
      last = now();
      draw(done, total, detail);
    };
  };
  if (!stream.isTTY) {
    const log = options.log ?? logger('progress');
    return {
      update: throttled(options.everyMs ?? 5_000, (done, total, detail) => log.info({ task: label, done, total, ...measure(done, total), detail }, 'progress')),
      finish: () => {},
    };
  }
  // A log line written while the bar shows erases it first (the next update draws it again): else it would run on after the bar.
  let shown = false;
  const erase = () => {
    if (shown) stream.write('\r\x1b[K');
    shown = false;
  };
  beforeLogLine(erase);
  return {
    update: throttled(options.everyMs ?? 100, (done, total, detail) => {
      const { rate, etaSeconds } = measure(done, total);
      const bar = total ? `[${'#'.repeat(Math.round((20 * done) / total)).padEnd(20, '.')}] ${done}/${total}` : `${done}`;
      const eta = etaSeconds === undefined ? '' : `, eta ${etaSeconds}s`;
      stream.write(`\r${label} ${bar} (${rate}/s${eta})${detail ? ` ${detail}` : ''}\x1b[K`);
      shown = true;
    }),
    finish: () => {
      beforeLogLine(undefined);
      shown = true;
      erase();
    },
  };
}
