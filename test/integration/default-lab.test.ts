/**
 * The newcomer's path: the built-in default config runs the lab IdP, requires sign-in on loopback,
 * and after one lab sign-in the status page says who the user is.
 */
import t from 'tap';
import { join } from 'node:path';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { startOrigin } from '../helpers/origin.js';
import { startTestTollgate } from '../helpers/tollgate.js';
import { FlowClient } from '../helpers/flow.js';

t.test('default config: browse, sign in as a lab user, ip.<cloud> shows who they are', async (t) => {
  const origin = await startOrigin();
  const tg = await startTestTollgate((dir) => ({
    ...DEFAULT_CONFIG,
    listeners: { proxy: '127.0.0.1:0', control: '127.0.0.1:0' },
    store: { type: 'embedded', path: dir },
    labIdp: { enabled: true, listen: '127.0.0.1:0', keys: join(dir, 'lab-idp') },
    hosts: { 'www.example.test': '127.0.0.1' },
  }));
  t.teardown(async () => {
    await tg.close();
    await origin.close();
  });
  const idp = tg.tg.runtime.current.idps.get('lab');
  t.ok(idp, 'the lab IdP became the default IdP');
  t.equal(idp?.config.provisioning, 'jit');
  t.match(JSON.stringify(tg.app.lines), /NOT FOR PRODUCTION/, 'the log says the lab IdP is not for production');

  const browser = new FlowClient(tg.proxyPort, '127.0.0.7');
  const before = JSON.parse((await browser.request('http://ip.tollgate.test/', { headers: { accept: 'application/json' } })).body) as { authenticated: boolean; location: string };
  t.equal(before.authenticated, false, 'step 0: the status page says "not authenticated"');
  t.equal(before.location, 'local');

  const page = await browser.signIn(`http://www.example.test:${origin.port}/hello`, 'alice@example.com', 'alice-lab-pw');
  t.equal(page.reply.status, 200, 'steps 1-2: browse, sign in, land on the page');
  t.equal(page.reply.body, 'hello world\n');
  const status = await browser.follow('http://ip.tollgate.test/');
  t.match(status.reply.body, /alice@example\.com/, 'step 3: the status page shows the user');
  t.match(status.reply.body, /Alice Anders/);
});
