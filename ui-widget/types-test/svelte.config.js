// Only what `svelte-kit sync` needs to write .svelte-kit/tsconfig.json: this app is
// type-checked, never built, so it has no adapter.
export default { kit: {} };
