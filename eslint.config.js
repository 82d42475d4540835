// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', '.wrangler/', 'sql/generated/', 'worker-configuration.d.ts', 'bench/results/', 'sdk/dist/', 'sdk/src/generated/', 'web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.json', './scripts/tsconfig.json', './sdk/tsconfig.json', './web/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Where code runs (docs/decisions.md, "Folders show where code runs"). The objects never import the Worker's routes,
    // services, middleware or lib: only what both sides share, functions/core/. The Worker reaches objects through their
    // binding types, never by importing them (functions/index.ts only re-exports the classes for the runtime).
    files: ['durable-objects/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(\\.\\./)+functions/(?!core/)', message: 'Objects import only functions/core/ (shared code), never the Worker.' }] },
      ],
    },
  },
  {
    files: ['functions/**/*.ts'],
    ignores: ['functions/index.ts', 'functions/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: 'durable-objects/', message: "The Worker reaches objects through their binding types (Env), never by importing their code." }] },
      ],
    },
  },
  {
    // functions/core/ is shared by both sides and owned by neither: it imports only itself and sql/generated.
    files: ['functions/core/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(?!\\.\\./sql/)|durable-objects/', message: 'functions/core/ imports only functions/core/ and sql/generated.' }] },
      ],
    },
  },
  {
    files: ['functions/core/*/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./\\.\\./(?!\\.\\./sql/)|durable-objects/', message: 'functions/core/ imports only functions/core/ and sql/generated.' }] },
      ],
    },
  },
  {
    // Node-side tools are plain ES modules checked by `tsc -p scripts` through JSDoc.
    files: ['scripts/**/*.mjs', 'eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
  {
    // The web UI runs in browsers.
    files: ['web/src/**/*.{ts,tsx}'],
    languageOptions: { globals: globals.browser },
    // `onClick={() => setOpen(false)}` is how React handlers are written.
    rules: { '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }] },
  },
  {
    // Plain scripts served as they are: the service worker and Swagger UI's initializer.
    files: ['web/public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, sourceType: 'script', globals: { ...globals.serviceworker, ...globals.browser } },
  },
);
