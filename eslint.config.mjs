import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/*
 * The arrows of the architecture (README, "How a request flows"): server -> graphql -> modules -> platform. Each rule
 * names what a layer may not import; `npm run lint` also fails on any import circle (madge).
 */
const restricted = (...patterns) => ['error', { patterns }];
const PLATFORM_KNOWS_NO_FEATURE = {
  regex: '^(\\.\\./)+(modules|config|graphql|server|seed|cli)(/|$)',
  message: 'platform knows no feature: it may not import modules, config, graphql, server, seed or cli',
};
const MODULES_KNOW_NO_TRANSPORT = {
  regex: '^(\\.\\./)+(server|graphql|cli)(/|$)',
  message: 'modules do not import the transport (server, graphql) or the CLIs',
};
const SLICES_MEET_AT_INDEX = {
  // `../<slice>/<file>` from inside a slice; the kernel's registries file is where slices extend open interfaces.
  regex: '^\\.\\./(?!kernel/registries$)[^./][^/]*/.+',
  message: "another slice is reached only through its index.ts (import '../<slice>')",
};
const SLICES_MEET_AT_INDEX_THE_LONG_WAY = {
  regex: '^\\.\\./\\.\\./modules/(?!kernel/registries$)[^/]+/.+',
  message: "another slice is reached only through its index.ts (import '../<slice>')",
};
const MIGRATIONS_ARE_FROZEN = {
  regex: '^(\\.\\./)+src(/|$)',
  message:
    'a migration is a frozen snapshot: copy the SQL it runs, never import live code (it would change meaning)',
};
const OUTSIDE_MEETS_AT_INDEX = {
  regex: '(^|/)modules/(?!kernel/registries$)[^/]+/.+',
  message: "outside src/modules a slice is reached only through its index.ts (import '.../modules/<slice>')",
};
/** config.ts reads each slice's settings fragment before any slice is built: the one file it may reach directly. */
const CONFIG_MEETS_AT_SETTINGS = {
  regex: '(^|/)modules/(?![^/]+/[^/]+\\.settings$)[^/]+/.+|(^|/)modules/[^/]+$',
  message:
    "config reaches a slice only through its settings fragment ('.../modules/<slice>/<name>.settings')",
};
/** A settings fragment is read before anything is built: zod, node and config/settings only. */
const SETTINGS_STAND_ALONE = {
  regex: '^\\.(?!\\./\\.\\./config/settings$)',
  message: 'a settings fragment imports only zod, node: modules and ../../config/settings',
};

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'examples/generated/**',
      '.data/**',
      'coverage/**',
      '*.js',
      '*.mjs',
      'scripts/*.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/require-await': 'off',
      // type-graphql and TypeORM take class constructors typed as Function.
      '@typescript-eslint/no-unsafe-function-type': 'off',
    },
  },
  {
    // Browser sources (bundled by scripts/build-web.js) typecheck against the DOM, not node: their own tsconfig.
    files: ['src/web/**/*.{ts,tsx}', 'examples/**/*.{ts,tsx}'],
    languageOptions: { parserOptions: { projectService: false, project: './tsconfig.web.json' } },
  },
  {
    files: ['src/platform/**/*.ts'],
    ignores: ['src/**/__tests__/**'],
    rules: { 'no-restricted-imports': restricted(PLATFORM_KNOWS_NO_FEATURE) },
  },
  {
    files: ['src/modules/*/**/*.ts'],
    ignores: ['src/**/__tests__/**'],
    rules: {
      'no-restricted-imports': restricted(
        MODULES_KNOW_NO_TRANSPORT,
        SLICES_MEET_AT_INDEX,
        SLICES_MEET_AT_INDEX_THE_LONG_WAY,
      ),
    },
  },
  {
    files: [
      'src/*.ts',
      'src/server/**/*.ts',
      'src/graphql/**/*.ts',
      'src/cli/**/*.ts',
      'src/seed/**/*.ts',
      'bench/**/*.ts',
      'ormconfig.ts',
    ],
    ignores: ['src/**/__tests__/**'],
    rules: { 'no-restricted-imports': restricted(OUTSIDE_MEETS_AT_INDEX) },
  },
  {
    files: ['src/config/**/*.ts'],
    ignores: ['src/**/__tests__/**'],
    rules: { 'no-restricted-imports': restricted(CONFIG_MEETS_AT_SETTINGS) },
  },
  {
    files: ['src/modules/*/*.settings.ts'],
    rules: { 'no-restricted-imports': restricted(SETTINGS_STAND_ALONE) },
  },
  {
    files: ['migrations/**/*.ts'],
    rules: { 'no-restricted-imports': restricted(MIGRATIONS_ARE_FROZEN) },
  },
  {
    files: ['test/**/*.ts', 'src/**/__tests__/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
);
