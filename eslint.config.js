// ESLint for the TypeScript (npm run lint, beside tsc, dependency-cruiser and shellcheck):
// typescript-eslint's recommended rules, type-checked (the type information from the tsconfigs),
// on src/, test/ and bench/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'module/**', 'docker/**', '*.js', '*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // No "set by an earlier step" (issue 37): a value a phase needs is in what the phase before returned.
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A synchronous implementation of an async interface (a local directory's Storage) stays
      // `async`: what it throws is then a rejection, as the interface's callers expect.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // One reader of the environment (issue 37): everything else takes the session's values.
    files: ['src/**/*.ts'],
    ignores: ['src/session.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read the environment through session.ts (session(), a parameter whose default is the session\'s).' }],
    },
  },
  {
    // Tests and the bench index fixtures they built themselves (a known array, a regex they wrote),
    // read the CLI's JSON as `any`, and use vitest's asymmetric matchers (typed `any`).
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
);
