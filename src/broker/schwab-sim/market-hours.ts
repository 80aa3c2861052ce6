/** The calendar moved to src/broker/market-hours.ts (the executor's deadline uses it too). */
export * from '../market-hours.ts';
