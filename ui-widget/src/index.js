// The package's entry: the Svelte component for apps that compile Svelte (SvelteKit), and
// the <exectime-stats> custom element, registered on import wherever a browser has a
// customElements registry and the name is still free.

import ExectimeStats from './ExectimeStats.svelte';
import { defineExectimeStats } from './element.svelte.js';

export { ExectimeStats };
export default ExectimeStats;
export { defineExectimeStats, createElementClass, TAG_NAME, ATTRIBUTES } from './element.svelte.js';

defineExectimeStats();
