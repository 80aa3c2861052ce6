/** A one-line progress display on a TTY (stderr); silent otherwise so pipes and logs stay clean. */
export interface Progress {
  /** `detail` (e.g. another rate) is shown after the rate and ETA. */
  update(done: number, total?: number, detail?: string): void;
  finish(): void;
}

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => {}, finish: () => {} };
  const started = performance.now();
  let lastDraw = 0;
  const draw = (done: number, total?: number, detail?: string) => {
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    const bar = total ? `[${'#'.repeat(Math.round((20 * done) / total)).padEnd(20, '.')}] ${done}/${total}` : `${done}`;
    const eta = total && rate > 0 ? `, eta ${Math.max(0, Math.round((total - done) / rate))}s` : '';
    stream.write(`\r${label} ${bar} (${rate}/s${eta})${detail ? ` ${detail}` : ''}\x1b[K`);
  };
  return {
    update(done, total, detail) {
      const now = performance.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      draw(done, total, detail);
    },
    finish() {
      stream.write('\r\x1b[K');
    },
  };
}
