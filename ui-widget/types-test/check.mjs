// npm run test:types: type-checks this minimal SvelteKit app against the package's types.
// `npm ci` here installs a fresh packed copy of .. (see .npmrc), so what is checked is what
// an app gets: package.json's exports and files, types/index.d.ts. Then `svelte-kit sync`
// and svelte-check, which fail on any type error, including an unused @ts-expect-error.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));

function run(args) {
  const r = spawnSync('npm', args, { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`types-test: npm ${args.join(' ')} failed (${r.error?.message ?? `status ${r.status}`})`);
    process.exit(r.status || 1);
  }
}

run(['ci', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']);
run(['run', '--silent', 'check']);
