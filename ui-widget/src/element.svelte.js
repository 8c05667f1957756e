// The <exectime-stats> custom element: a thin HTMLElement that mounts ExectimeStats in
// its shadow root and turns attributes (and same-named properties) into the component's
// props. Written by hand rather than with Svelte's customElement compile option so that
// the very same component also works, unchanged, inside a SvelteKit app.

import { mount, unmount } from 'svelte';
import ExectimeStats from './ExectimeStats.svelte';

export const TAG_NAME = 'exectime-stats';

/** Attribute → prop of ExectimeStats (and property of the element). */
export const ATTRIBUTES = Object.freeze({
  'api-base': 'apiBase',
  token: 'token',
  'tenant-id': 'tenantId',
  'workflow-id': 'workflowId',
  range: 'range',
  'refresh-seconds': 'refreshSeconds',
  theme: 'theme',
});

const HOST_CSS = ':host{display:block}:host([hidden]){display:none}';

/* The props object handed to mount: a $state proxy, so assigning a field re-renders. */
function createProps() {
  const props = $state({});
  return props;
}

/*
 * A property set before the element was defined (el.token = … on an unupgraded element)
 * sits on the instance and hides the accessor: move it through the accessor.
 */
function upgradeProperty(el, prop) {
  if (Object.prototype.hasOwnProperty.call(el, prop)) {
    const value = el[prop];
    delete el[prop];
    el[prop] = value;
  }
}

/** A new class for the element (a class can be registered under one name only). */
export function createElementClass() {
  class ExectimeStatsElement extends HTMLElement {
    static get observedAttributes() {
      return Object.keys(ATTRIBUTES);
    }

    constructor() {
      super();
      this._props = createProps(); // current props of the mounted component
      this._app = null; // the mounted component while connected
      const shadow = this.attachShadow({ mode: 'open' });
      const style = document.createElement('style');
      style.textContent = HOST_CSS;
      shadow.appendChild(style);
    }

    connectedCallback() {
      for (const prop of Object.values(ATTRIBUTES)) upgradeProperty(this, prop);
      if (!this._app) this._app = mount(ExectimeStats, { target: this.shadowRoot, props: this._props });
    }

    disconnectedCallback() {
      // Moving the element disconnects and reconnects it in one task: keep it alive then.
      queueMicrotask(() => {
        if (!this.isConnected && this._app) {
          const app = this._app;
          this._app = null;
          unmount(app);
        }
      });
    }

    attributeChangedCallback(name, oldValue, value) {
      const prop = ATTRIBUTES[name];
      if (prop) this._props[prop] = value ?? undefined;
    }
  }

  // Properties mirror the attributes; setting one does not write the attribute back, so
  // a token handed over as a property stays out of the DOM.
  for (const prop of Object.values(ATTRIBUTES)) {
    Object.defineProperty(ExectimeStatsElement.prototype, prop, {
      configurable: true,
      enumerable: true,
      get() {
        return this._props[prop];
      },
      set(value) {
        this._props[prop] = value ?? undefined;
      },
    });
  }
  return ExectimeStatsElement;
}

/**
 * Registers the element under `name` unless that name is taken (then the registered class
 * is returned) or there is no customElements registry (server-side rendering: null).
 * @param {string} [name]
 */
export function defineExectimeStats(name = TAG_NAME) {
  if (typeof customElements === 'undefined' || typeof HTMLElement === 'undefined') return null;
  const existing = customElements.get(name);
  if (existing) return existing;
  const cls = createElementClass();
  customElements.define(name, cls);
  return cls;
}
