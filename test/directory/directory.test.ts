import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EmbeddedStore } from '../../src/sessions/embedded.js';
import { openStore } from '../../src/sessions/open.js';
import { startRedis } from '../helpers/redis.js';
import { directorySuite } from './directory.suite.js';

const dir = await mkdtemp(join(tmpdir(), 'tollgate-directory-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
directorySuite('embedded', async () => new EmbeddedStore({ path: dir }));

// REDIS_URL points the suite at an existing server; by default it spawns its own.
const server = process.env.REDIS_URL ? null : await startRedis();
t.teardown(() => server?.stop());
const url = process.env.REDIS_URL ?? server!.url;
const keyPrefix = `tg-test-${randomUUID().slice(0, 8)}:`;
directorySuite('redis', () => openStore({ type: 'redis', url, keyPrefix, commandTimeoutMs: 5_000 }));
