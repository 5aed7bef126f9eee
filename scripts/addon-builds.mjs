// Builds of the native addon for comparisons between revisions (scripts/bitcompare.mjs: bits;
// bench/ab.mjs: speed): the addon of a git revision, built in a temporary worktree, or of this
// checkout, both with cmake-js in Release into a temporary directory outside the repository.
//
//   const builds = addonBuilds({ jobs: 2, log: (m) => console.log(m) });
//   const before = builds.revision('main');   // .../Release/fastgru.node
//   const after = builds.checkout();
//   builds.dispose();                          // removes the worktree and the builds (or keep: true)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { number } from '../bin/args.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Runs a command; its output, or an Error with the last 30 lines of it. */
export function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`);
  }
  return r.stdout;
}

/**
 * A place for addon builds. `jobs`: parallel compile jobs; `log`: progress lines; `keep`: leave
 * the temporary directory (its path is logged) instead of removing it in dispose().
 * @param {{ jobs?: number, log?: (line: string) => void, keep?: boolean, prefix?: string }} [options]
 */
export function addonBuilds({ jobs = 2, log = () => {}, keep = false, prefix = 'fastgru-addon-' } = {}) {
  const temp = mkdtempSync(join(tmpdir(), prefix));
  const worktrees = [];
  let count = 0;

  /** Builds the addon of source tree `src`; returns its .node file. */
  const build = (src, what) => {
    const out = join(temp, `build-${count++}`);
    const started = Date.now();
    log(`building ${what} (cmake-js, Release, -j${jobs})...`);
    run(process.execPath, [join(ROOT, 'node_modules/cmake-js/bin/cmake-js'), 'compile', '-d', src, '-O', out], {
      cwd: src,
      env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: String(jobs) },
    });
    const addon = join(out, 'Release', 'fastgru.node');
    if (!existsSync(addon)) throw new Error(`no ${addon} after the build`);
    log(`built ${what} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return addon;
  };

  return {
    /** The addon of git revision `rev` (a branch, tag or hash), from a temporary worktree. */
    revision(rev) {
      const hash = run('git', ['-C', ROOT, 'rev-parse', '--verify', `${rev}^{commit}`]).trim();
      const worktree = join(temp, `src-${worktrees.length}`);
      run('git', ['-C', ROOT, 'worktree', 'add', '--detach', worktree, hash]);
      worktrees.push(worktree);
      // The build reads node-addon-api through node_modules: this checkout's.
      symlinkSync(join(ROOT, 'node_modules'), join(worktree, 'node_modules'), 'dir');
      return build(worktree, `the addon of ${rev} (${hash.slice(0, 12)})`);
    },
    /** The addon of this checkout's sources as they are (uncommitted changes included). */
    checkout() {
      return build(ROOT, 'the addon of this checkout');
    },
    /** Removes the worktrees and the builds, or with `keep` says where they are. */
    dispose() {
      if (keep) {
        log(`kept ${temp}`);
        return;
      }
      for (const w of worktrees) spawnSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', w]);
      rmSync(temp, { recursive: true, force: true });
      spawnSync('git', ['-C', ROOT, 'worktree', 'prune']);
    },
  };
}

/** The flags every before/after comparison takes, in bin/args.mjs's parseCli form. */
export const COMPARE_OPTIONS = {
  before: { type: 'string' },
  'before-addon': { type: 'string' },
  'after-addon': { type: 'string' },
  jobs: { type: 'string', value: number({ integer: true, min: 1 }), default: 2 },
  keep: { type: 'boolean' },
};
/** Their usage text. */
export const COMPARE_USAGE = '(--before REV | --before-addon FILE) [--after-addon FILE] [--jobs N] [--keep]';

/**
 * The two addons a comparison's parsed flags name: --before-addon / --after-addon as given, or
 * built (--before's revision; this checkout). Without --before or --before-addon it prints the
 * usage and exits 2. addons() builds; call builds.dispose() when done.
 * @param {{ before?: string, beforeAddon?: string, afterAddon?: string, jobs: number, keep?: boolean }} opts
 * @param {string} name  the command's name, prefixing its lines
 * @param {string} usage
 */
export function comparedAddons(opts, name, usage) {
  if (!opts.before && !opts.beforeAddon) {
    console.error(`${name}: --before or --before-addon is required\n${usage}`);
    process.exit(2);
  }
  const builds = addonBuilds({ jobs: opts.jobs, keep: opts.keep, prefix: `fastgru-${name}-`, log: (m) => console.log(`${name}: ${m}`) });
  return {
    builds,
    /** The two .node files: { before, after }, building what was not given. */
    addons() {
      return {
        before: opts.beforeAddon ? resolve(opts.beforeAddon) : builds.revision(opts.before),
        after: opts.afterAddon ? resolve(opts.afterAddon) : builds.checkout(),
      };
    },
  };
}
