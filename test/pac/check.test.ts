/**
 * check: an activation's PAC files are validated in the sidecar, a child process, which gives the
 * answers the same check gives in this process. The sidecar path is the built one (JavaScript
 * beside sidecar/child.js), so this test transpiles src/ to JavaScript first and runs that.
 */
import t from 'tap';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PacCheckJob, PacCheckResult } from '../../src/pac/check.js';
import { checkAll } from '../../src/pac/checker.js';
import { builtSrc } from '../helpers/transpile.js';

const job: PacCheckJob = {
  checks: [
    { label: 'good', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { return isPlainHostName(host) ? "DIRECT" : "PROXY gw.example.net:9400"; }' }] },
    { label: 'throws', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { throw new Error("no"); }' }] },
    { label: 'bad answer', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { return "SOCKS"; }' }] },
    { label: 'two patterns', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) { return shExpMatch(host, "*.okta.com", "*.oktacdn.com") ? "DIRECT" : "PROXY a:1"; }' }] },
    { label: 'does not compile', runs: [{ clientIp: '192.0.2.10', text: 'function FindProxyForURL(url, host) {' }] },
  ],
  urls: ['http://intranet/', 'https://www.example.com/', 'http://login.okta.com/'],
  hosts: [],
};

t.test('the check in the sidecar answers as the same check in this process', async (t) => {
  const out = builtSrc(t, 'pac');
  const built = (await import(pathToFileURL(join(out, 'pac', 'check.js')).href)) as { checkApart(job: PacCheckJob): Promise<PacCheckResult> };
  const apart = await built.checkApart(job);
  const here = await checkAll(job);
  t.same(apart, here, 'same errors and warnings, in the same order');
  t.equal(here.errors.filter((e) => e.startsWith('good')).length, 0, 'the good file passes');
  t.ok(here.errors.some((e) => e.startsWith('throws: ')), 'a throwing file is reported');
  t.ok(here.errors.some((e) => e.startsWith('bad answer: ')), 'a bad answer is reported');
  t.ok(here.errors.some((e) => e.startsWith('does not compile: ')), 'a file that does not compile is reported');
  t.ok(here.warnings.some((w) => w.startsWith('two patterns: ')), 'shExpMatch with two patterns warns');
});
