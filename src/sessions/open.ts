import { EmbeddedStore } from './embedded.js';
import type { Store, StoreConfig } from './store.js';

/** OpenStoreOptions carries what the config does not: error reporting and the first-connect wait. */
export interface OpenStoreOptions {
  /** onError hears backend connection problems that no caller awaits (see RedisStoreOptions). */
  readonly onError?: (err: Error) => void;
  /** connectTimeoutMs bounds the wait for the first Redis connection. Default 10 s. */
  readonly connectTimeoutMs?: number;
}

/**
 * openStore builds the backend named by the config: embedded SQLite, or Redis standalone,
 * Sentinel or Cluster. For Redis it waits until the first connection is ready, because the store
 * fails fast (no offline queue) and would otherwise reject the first commands after startup; when
 * Redis does not answer in time it closes what it opened and rejects with StoreUnavailableError.
 *
 * It returns the bare backend; the caller wraps it in a TieredStore for the hot path. The Redis
 * client is loaded only when Redis is configured: it is a fifth of a data plane's memory otherwise.
 */
export async function openStore(cfg: StoreConfig, opts: OpenStoreOptions = {}): Promise<Store> {
  switch (cfg.type) {
    case 'embedded':
      return new EmbeddedStore({ path: cfg.path, onError: opts.onError });
    case 'redis': {
      const { RedisStore } = await import('./redis.js');
      const store = new RedisStore(cfg, { onError: opts.onError });
      try {
        await store.ready(opts.connectTimeoutMs ?? 10_000);
      } catch (err) {
        await store.close();
        throw err;
      }
      return store;
    }
  }
}
