import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', '.bench/', 'test/fixtures/**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // Folds stay pure: no I/O, clock or adapters may leak into projections/.
    files: ['projections/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'http', 'net', 'child_process', 'better-sqlite3', '@eventstore/*', 'pino'], message: 'projections/ are pure folds: no I/O imports.' },
          { group: ['**/src/eventstore/sqlite*', '**/src/eventstore/esdb*', '**/src/chain/**', '**/src/broker/**', '**/src/services/**', '**/src/cli/**', '**/src/http/**'], message: 'projections/ depend only on the domain.' },
        ],
      }],
      'no-restricted-globals': ['error', { name: 'Date', message: 'folds have no clock' }, { name: 'setTimeout', message: 'folds have no timers' }],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'folds have no randomness' }],
    },
  },
);
