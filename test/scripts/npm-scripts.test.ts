import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
const packageJson = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

describe('npm scripts that run dist/', () => {
  it('each builds first only when stale, then is one command the script shell execs (signals reach node)', () => {
    const scripts = packageJson.scripts;
    const runners = Object.entries(scripts).filter(([, command]) => / dist\//.test(command));
    expect(runners.map(([name]) => name)).toEqual(
      expect.arrayContaining(['start', 'worker', 'migrate', 'seed', 'token', 'bench']),
    );
    for (const [name, command] of runners)
      expect({ name, command, pre: scripts[`pre${name}`] }).toEqual({
        name,
        command: expect.stringMatching(/^node [^&|;<>]*dist\/\S+\.js$/),
        pre: 'node scripts/build-if-stale.js',
      });
    // dash (Debian's /bin/sh) forks a lone command and dies of the SIGTERM npm forwards; bash execs it.
    expect(readFileSync(resolve(ROOT, '.npmrc'), 'utf8')).toMatch(/^script-shell=\/bin\/bash$/m);
  });

  /**
   * A copy of the project's scripts around a one-file source tree, with a typescript whose tsc notes each run in a
   * log before running the real one: what `npm run token` compiles, and when, is counted rather than timed.
   */
  describe('in a fresh clone', () => {
    let root: string;
    let tscLog: string;
    const tscRuns = () =>
      existsSync(tscLog) ? readFileSync(tscLog, 'utf8').split('\n').filter(Boolean).length : 0;
    const token = (...args: string[]) =>
      run('npm', ['run', '-s', 'token', '--', ...args], {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TSC_LOG: tscLog },
      });
    const writeSource = (text: string) =>
      writeFileSync(
        join(root, 'src/cli/token.cli.ts'),
        `process.stdout.write(${JSON.stringify(text)} + process.argv.slice(2).join(' ') + '\\n');\n`,
      );

    const backdateBuild = () => {
      const past = new Date(Date.now() - 10_000);
      utimesSync(join(root, 'dist/.build-stamp'), past, past);
    };

    beforeAll(() => {
      root = mkdtempSync(join(tmpdir(), 'crm-npm-scripts-'));
      tscLog = join(root, 'tsc.log');
      for (const file of [
        'package.json',
        '.npmrc',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
      ])
        copyFileSync(resolve(ROOT, file), join(root, file));
      mkdirSync(join(root, 'scripts'));
      copyFileSync(resolve(ROOT, 'scripts/build-if-stale.js'), join(root, 'scripts/build-if-stale.js'));
      // The bundler beside it, with no browser apps: this tree is about what tsc compiles, and when.
      const buildWeb = readFileSync(resolve(ROOT, 'scripts/build-web.js'), 'utf8');
      const noApps = buildWeb.replace(/^const WEB_APPS = \[[\s\S]*?^\];$/m, 'const WEB_APPS = [];');
      expect(noApps).not.toBe(buildWeb);
      writeFileSync(join(root, 'scripts/build-web.js'), noApps);
      for (const dir of ['src/cli', 'bench', 'migrations', 'test'])
        mkdirSync(join(root, dir), { recursive: true });
      writeFileSync(join(root, 'ormconfig.ts'), 'export {};\n');
      writeSource('v1 ');

      mkdirSync(join(root, 'node_modules/typescript/bin'), { recursive: true });
      mkdirSync(join(root, 'node_modules/.bin'));
      symlinkSync(resolve(ROOT, 'node_modules/@types'), join(root, 'node_modules/@types'));
      const fakeTsc = join(root, 'node_modules/typescript/bin/tsc');
      writeFileSync(
        fakeTsc,
        [
          '#!/usr/bin/env node',
          `require('node:fs').appendFileSync(process.env.TSC_LOG, process.argv.slice(2).join(' ') + '\\n');`,
          `require(${JSON.stringify(resolve(ROOT, 'node_modules/typescript/bin/tsc'))});`,
        ].join('\n'),
      );
      chmodSync(fakeTsc, 0o755);
      symlinkSync('../typescript/bin/tsc', join(root, 'node_modules/.bin/tsc'));
    });
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    it('the first run builds the missing dist/, then runs the CLI; stdout is only the CLI output', async () => {
      const { stdout, stderr } = await token('--email', 'a@b.example');
      expect(stdout).toBe('v1 --email a@b.example\n');
      expect(stderr).toMatch(/\[build\] compiling dist\/ \(no build yet\)/);
      expect(tscRuns()).toBe(1);
      expect(existsSync(join(root, 'dist/src/cli/token.cli.js'))).toBe(true);
    });

    it('a second run compiles nothing', async () => {
      const { stdout, stderr } = await token('--email', 'a@b.example');
      expect(stdout).toBe('v1 --email a@b.example\n');
      expect(stderr).toBe('');
      expect(tscRuns()).toBe(1);
    });

    it('a changed source is compiled before the run', async () => {
      backdateBuild(); // so the edit is newer than the stamp whatever the file system's mtime resolution
      writeSource('v2 ');
      const { stdout, stderr } = await token();
      expect(stdout).toBe('v2 \n');
      expect(stderr).toMatch(/\[build\] compiling dist\/ \(\S+ changed\)/);
      expect(tscRuns()).toBe(2);
      expect((await token()).stdout).toBe('v2 \n');
      expect(tscRuns()).toBe(2);
    });

    it('a build that fails stops the command with tsc exit status, before the CLI runs', async () => {
      backdateBuild();
      writeFileSync(join(root, 'src/cli/token.cli.ts'), 'const x: number = "not a number";\n');
      const failure = (await token().catch((error: unknown) => error)) as { code: number; stdout: string };
      expect(failure.code).not.toBe(0);
      expect(failure.stdout).toBe('');
    });
  });
});
