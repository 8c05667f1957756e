// Types of the exectime-widget package (the `types` condition of package.json's exports):
// the Svelte component, the <exectime-stats> element and the module's other exports, plus
// the tag in the DOM's HTMLElementTagNameMap and in Svelte's SvelteHTMLElements, so that
// document.querySelector('exectime-stats') and <exectime-stats …> in Svelte markup are typed.
// Written by hand beside src/ (plain JavaScript): test/types.test.js checks that the names
// here are the ones src/element.svelte.js maps, and types-test/ type-checks a SvelteKit app
// against this file with svelte-check.

import type { Component } from 'svelte';
import type { HTMLAttributes } from 'svelte/elements';

/** A preset (`1h`, `24h`, `7d`, `30d`) or an ISO interval `start/end`; anything else means `24h`. */
export type ExectimeRange = '1h' | '24h' | '7d' | '30d' | `${string}/${string}`;

/** `auto` follows the system's prefers-color-scheme. */
export type ExectimeTheme = 'auto' | 'light' | 'dark';

/** Seconds between refreshes, at least 5; 0 refreshes only on demand. */
export type ExectimeRefreshSeconds = number | `${number}`;

/** Props of the Svelte component (and properties of the element), all optional. */
export interface ExectimeStatsProps {
  /** The agent's base URL; the widget appends /api/v1/statistics/execution-times. Default: the page's origin. */
  apiBase?: string;
  /** The JWT sent as `Authorization: Bearer …`; without one nothing is requested. */
  token?: string;
  /** Required when the token allows several tenants. */
  tenantId?: string;
  /** One workflow only (no workflow table). */
  workflowId?: string;
  /** The starting range. Default `24h`. */
  range?: ExectimeRange;
  /** Default 30. */
  refreshSeconds?: ExectimeRefreshSeconds;
  /** Default `auto`. */
  theme?: ExectimeTheme;
}

/** The attributes of <exectime-stats>, each the kebab-case name of a prop. */
export interface ExectimeStatsAttributes {
  'api-base'?: string | null;
  token?: string | null;
  'tenant-id'?: string | null;
  'workflow-id'?: string | null;
  range?: ExectimeRange | null;
  'refresh-seconds'?: ExectimeRefreshSeconds | null;
  theme?: ExectimeTheme | null;
}

/**
 * The <exectime-stats> element. Its properties mirror the attributes: setting one takes
 * effect at once (without writing the attribute back); reading one gives what was last
 * set through either, or undefined. null or undefined clears it (the default applies).
 */
export interface ExectimeStatsElement extends HTMLElement {
  get apiBase(): string | undefined;
  set apiBase(value: string | null | undefined);
  get token(): string | undefined;
  set token(value: string | null | undefined);
  get tenantId(): string | undefined;
  set tenantId(value: string | null | undefined);
  get workflowId(): string | undefined;
  set workflowId(value: string | null | undefined);
  get range(): string | undefined;
  set range(value: ExectimeRange | null | undefined);
  get refreshSeconds(): ExectimeRefreshSeconds | undefined;
  set refreshSeconds(value: ExectimeRefreshSeconds | null | undefined);
  get theme(): string | undefined;
  set theme(value: ExectimeTheme | null | undefined);
}

/** The class behind <exectime-stats> (what customElements.define registers). */
export interface ExectimeStatsElementConstructor {
  new (): ExectimeStatsElement;
  readonly prototype: ExectimeStatsElement;
  readonly observedAttributes: string[];
}

/** The widget as a Svelte 5 component (compiled with the app through the `svelte` condition). */
declare const ExectimeStats: Component<ExectimeStatsProps>;
export default ExectimeStats;
export { ExectimeStats };

/** `exectime-stats`, the name registered on import. */
export declare const TAG_NAME: 'exectime-stats';

/** Attribute → prop (and element property). */
export declare const ATTRIBUTES: Readonly<{
  'api-base': 'apiBase';
  token: 'token';
  'tenant-id': 'tenantId';
  'workflow-id': 'workflowId';
  range: 'range';
  'refresh-seconds': 'refreshSeconds';
  theme: 'theme';
}>;

/** A new class for the element (a class can be registered under one name only). */
export declare function createElementClass(): ExectimeStatsElementConstructor;

/**
 * Registers the element under `name` (default `exectime-stats`) and returns its class; if
 * the name is already taken, returns the class registered there (assumed to be this one);
 * null where there is no customElements registry (server-side rendering).
 */
export declare function defineExectimeStats(name?: string): ExectimeStatsElementConstructor | null;

declare global {
  interface HTMLElementTagNameMap {
    'exectime-stats': ExectimeStatsElement;
  }
}

// Svelte markup: the attributes (kebab-case) next to every HTML attribute. Not the
// camelCase properties: until the element is registered (and in server-rendered HTML)
// Svelte writes a name it does not know as a property as an attribute, and apiBase
// would arrive as the attribute "apibase", which means nothing.
declare module 'svelte/elements' {
  export interface SvelteHTMLElements {
    'exectime-stats': HTMLAttributes<ExectimeStatsElement> & ExectimeStatsAttributes;
  }
}
