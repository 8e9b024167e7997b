import { randomUUID } from 'node:crypto';
import t from 'tap';
import { openStore } from '../../src/sessions/open.js';
import { startRedisCluster } from '../helpers/redis.js';
import { directorySuite } from './directory.suite.js';

// On a Cluster every commit must stay inside one tenant's hash tag, or Redis refuses it (CROSSSLOT).
const cluster = await startRedisCluster();
t.teardown(() => cluster.stop());
const keyPrefix = `tg-test-${randomUUID().slice(0, 8)}:`;
directorySuite('redis cluster', () => openStore({ type: 'redis', cluster: cluster.seeds, keyPrefix, commandTimeoutMs: 5_000 }));
