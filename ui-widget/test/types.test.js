// types/index.d.ts is written by hand beside the JavaScript: these checks keep its names
// equal to what src/element.svelte.js maps and package.json points at. (Whether the types
// hold together is types-test/'s job, with svelte-check: npm run test:types.)
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { ATTRIBUTES, TAG_NAME } from '../src/element.svelte.js';

const root = new URL('..', import.meta.url);
const dts = fs.readFileSync(new URL('types/index.d.ts', root), 'utf8');
const pkg = JSON.parse(fs.readFileSync(new URL('package.json', root), 'utf8'));

/* The members `name?:` or `'name'?:` of the interface (or the object type after `const`) called name. */
function members(kind, name) {
  const start = dts.indexOf(`${kind} ${name}`);
  expect(start, `${kind} ${name} in types/index.d.ts`).toBeGreaterThan(-1);
  const body = dts.slice(dts.indexOf('{', start) + 1, dts.indexOf('}', start));
  const out = new Map();
  for (const m of body.matchAll(/^\s*(?:'([^']+)'|([A-Za-z]+))\??:\s*'?([^;']*)'?;/gm)) out.set(m[1] ?? m[2], m[3].trim());
  return out;
}

describe('types/index.d.ts', () => {
  it('declares ATTRIBUTES as the element maps them', () => {
    expect(Object.fromEntries(members('const', 'ATTRIBUTES:'))).toEqual({ ...ATTRIBUTES });
    expect(dts).toContain(`TAG_NAME: '${TAG_NAME}'`);
    expect(dts).toContain(`'${TAG_NAME}': ExectimeStatsElement;`);
    expect(dts).toContain(`'${TAG_NAME}': HTMLAttributes<ExectimeStatsElement> & ExectimeStatsAttributes;`);
  });

  it('has a prop, an attribute and an element property for each attribute', () => {
    expect([...members('interface', 'ExectimeStatsProps').keys()].sort()).toEqual(Object.values(ATTRIBUTES).sort());
    expect([...members('interface', 'ExectimeStatsAttributes').keys()].sort()).toEqual(Object.keys(ATTRIBUTES).sort());
    for (const prop of Object.values(ATTRIBUTES)) {
      expect(dts).toMatch(new RegExp(`get ${prop}\\(\\)`));
      expect(dts).toMatch(new RegExp(`set ${prop}\\(value`));
    }
  });

  it('is what package.json gives TypeScript, first among the conditions, and is published', () => {
    const conditions = Object.keys(pkg.exports['.']);
    expect(conditions[0]).toBe('types');
    expect(pkg.exports['.'].types).toBe('./types/index.d.ts');
    expect(pkg.types).toBe('./types/index.d.ts');
    expect(pkg.files).toContain('types');
  });
});
