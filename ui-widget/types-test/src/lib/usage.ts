// The element's DOM and module APIs from TypeScript. Each @ts-expect-error is a mistake
// the types must catch: should they become too loose (any), the directive itself fails.
import { mount } from 'svelte';
import ExectimeStats, {
  ATTRIBUTES,
  TAG_NAME,
  createElementClass,
  defineExectimeStats,
  type ExectimeStatsElement,
  type ExectimeStatsProps,
} from 'exectime-widget';

const found = document.querySelector('exectime-stats');
if (found) {
  found.token = 'eyJ…';
  found.refreshSeconds = 10;
  found.range = '30d';
  found.theme = null; // back to the default
  const tenant: string | undefined = found.tenantId;
  void tenant;
  // @ts-expect-error theme is auto, light or dark
  found.theme = 'purple';
  // @ts-expect-error refreshSeconds is a number of seconds
  found.refreshSeconds = 'often';
  // @ts-expect-error no such property
  found.tenant = 't1';
}

const created: ExectimeStatsElement = document.createElement(TAG_NAME);
created.apiBase = 'https://stats.example.com';
const tag: 'exectime-stats' = TAG_NAME;
const tokenProp: 'token' = ATTRIBUTES.token;
const refreshProp: 'refreshSeconds' = ATTRIBUTES['refresh-seconds'];
void [tag, tokenProp, refreshProp];

const cls = defineExectimeStats('my-stats');
if (cls) {
  const mine: ExectimeStatsElement = new cls();
  void mine;
}
const Another = createElementClass();
customElements.define('other-stats', Another);

const props: ExectimeStatsProps = { token: 'eyJ…', range: '24h' };
mount(ExectimeStats, { target: document.body, props });
// @ts-expect-error range is a preset or start/end
mount(ExectimeStats, { target: document.body, props: { range: 'last week' } });
// @ts-expect-error the prop is apiBase
mount(ExectimeStats, { target: document.body, props: { api_base: 'x' } });
