/** Chain order of logs: (blockNumber, logIndex). */

export interface LogMark {
  readonly blockNumber: bigint;
  readonly logIndex: bigint;
}

export const compareLogMarks = (a: LogMark, b: LogMark): -1 | 0 | 1 =>
  a.blockNumber !== b.blockNumber ? (a.blockNumber < b.blockNumber ? -1 : 1) : a.logIndex === b.logIndex ? 0 : a.logIndex < b.logIndex ? -1 : 1;

export const isAfter = (a: LogMark, b: LogMark): boolean => compareLogMarks(a, b) > 0;
