import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, greSupport, run, sweepLeftovers, waitForLine, type Lab } from '../helpers/netns.js';
import { originalDestinationSupport } from '../../src/proxy/origdst.js';
import { startOrigin, startRelay } from '../helpers/standin.js';

const curl = (lab: Lab, ...args: string[]) => lab.run('client', ['curl', '-sS', '--max-time', '5', ...args]);

t.test('SO_ORIGINAL_DST is available on this machine', async (t) => {
  const s = originalDestinationSupport();
  t.ok(s.available, s.reason);
});

t.test('the host routes the client namespace to the origin namespace', async (t) => {
  const lab = await createLab();
  t.teardown(lab.close);
  await startOrigin(lab);
  const r = await curl(lab, `http://${lab.originAddress}/`);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `origin ::ffff:${lab.originAddress}:80 host=${lab.originAddress} from=::ffff:${lab.clientAddress}\n`, 'reached directly, with the client address kept');
});

t.test('a REDIRECTed connection lands on the host listener, which reads where the client was going', async (t) => {
  // Listeners on the host address facing the client: REDIRECT in PREROUTING rewrites the destination
  // to the primary address of the interface the packet came in on.
  const lab = await createLab();
  t.teardown(lab.close);
  await startOrigin(lab);
  const http = await startRelay(t, {}, lab.hostClientAddress, lab.hostClientAddress6);
  const tls = await startRelay(t, {}, lab.hostClientAddress);
  await lab.redirect({ http: http.port, tls: tls.port });

  const r = await curl(lab, `http://${lab.originAddress}/page`);
  t.equal(r.code, 0, r.stderr);
  t.same(http.seen, [{ address: lab.originAddress, port: 80, family: 4 }], 'original destination of the port 80 connection');
  // The relay dialled the origin from the host, so the origin sees the host's address.
  t.equal(r.stdout, `origin ::ffff:${lab.originAddress}:80 host=${lab.originAddress} from=::ffff:${lab.hostOriginAddress}\n`, 'the relay reached the origin at that destination');

  // Port 443: the listener only records; curl's TLS handshake fails on the closed connection.
  await curl(lab, `https://${lab.originAddress}/`);
  t.same(tls.seen[0], { address: lab.originAddress, port: 443, family: 4 }, 'original destination of the port 443 connection');

  const r6 = await curl(lab, '-g', `http://[${lab.originAddress6}]/`);
  t.same(http.seen[1], { address: lab.originAddress6, port: 80, family: 6 }, 'IPv6 original destination (IP6T_SO_ORIGINAL_DST)');
  t.match(r6.stdout, new RegExp(`^origin ${lab.originAddress6.replace(/\./g, '\\.')}:80 `), 'and the relay reached the origin over IPv6');
});

t.test('a connection to the listener itself (no NAT) has no original destination', async (t) => {
  const lab = await createLab();
  t.teardown(lab.close);
  const relay = await startRelay(t, {}, lab.hostClientAddress);
  await lab.redirect({ http: relay.port });
  const r = await curl(lab, `http://${lab.hostClientAddress}:${relay.port}/`);
  t.equal(r.stdout, 'no origdst here');
  t.same(relay.seen, [null], 'null: the caller falls back to Host / SNI');

  const loop = await startRelay(t, {}, '127.0.0.1');
  const direct = await run(['curl', '-sS', '--max-time', '5', `http://127.0.0.1:${loop.port}/`]);
  t.equal(direct.stdout, 'no origdst here');
  t.same(loop.seen, [null], 'a loopback connection is not redirected either');
});

const gre = await greSupport();
const greSkip = gre.ok ? false : `this kernel cannot make GRE tunnels (${gre.reason}), so the GRE lab is not tested here`;
t.test('GRE: the same REDIRECT through a GRE tunnel from the client namespace', { skip: greSkip }, async (t) => {
  const lab = await createLab({ gre: true });
  t.teardown(lab.close);
  await startOrigin(lab);
  const relay = await startRelay(t, {}, lab.hostClientAddress);
  await lab.redirect({ http: relay.port });
  const r = await curl(lab, `http://${lab.originAddress}/`);
  t.equal(r.code, 0, r.stderr);
  t.same(relay.seen, [{ address: lab.originAddress, port: 80, family: 4 }]);
  t.match(r.stdout, /^origin /);
});

/** leftovers lists the namespaces, host links and iptables lines that carry a lab's name. */
async function leftovers(name: string): Promise<string[]> {
  const outputs = await Promise.all([
    run(['ip', 'netns', 'list']),
    run(['ip', '-o', 'link', 'show']),
    run(['iptables', '-w', '-S']),
    run(['iptables', '-w', '-t', 'nat', '-S']),
    run(['ip6tables', '-w', '-t', 'nat', '-S']),
  ]);
  const re = new RegExp(`${name}(?!\\d)`);
  return outputs.flatMap((o) => o.stdout.split('\n')).filter((l) => re.test(l));
}

async function labInChild(): Promise<{ child: ChildProcess; name: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/netns-child.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await waitForLine(child, /^lab /, 30_000);
  return { child, name: line.slice(4).trim() };
}

t.test('a lab whose process is signalled removes itself; one whose process is killed is swept by the next', async (t) => {
  const term = await labInChild();
  t.not((await leftovers(term.name)).length, 0, 'the lab is up while its process runs');
  const exited = new Promise((r) => term.child.once('exit', (code, signal) => r(signal)));
  term.child.kill('SIGTERM');
  t.equal(await exited, 'SIGTERM', 'the process still dies of the signal');
  t.same(await leftovers(term.name), [], 'SIGTERM: nothing of the lab is left');

  const kill = await labInChild();
  await addRedirectChain(t, kill.name);
  kill.child.kill('SIGKILL');
  await new Promise((r) => kill.child.once('exit', r));
  t.not((await leftovers(kill.name)).length, 0, 'SIGKILL leaves the lab behind');
  sweepLeftovers();
  t.same(await leftovers(kill.name), [], 'the sweep removes all of it');
});

/** addRedirectChain adds a nat chain of the lab's name, as redirect() does, so the sweep must find rules too. */
async function addRedirectChain(t: Test, name: string): Promise<void> {
  t.equal((await run(['iptables', '-w', '-t', 'nat', '-N', name])).code, 0);
  t.equal((await run(['iptables', '-w', '-t', 'nat', '-A', 'PREROUTING', '-i', `${name}hc`, '-j', name])).code, 0);
}

t.test('a dual-stack listener reads the original destination of IPv4 (mapped) and IPv6 connections', async (t) => {
  // Inside the client namespace, so the wildcard listener and its REDIRECT (nat OUTPUT, for the
  // namespace's own connections) exist only there.
  const lab = await createLab();
  t.teardown(lab.close);
  const child = lab.spawn('client', [process.execPath, '--import', 'tsx', fileURLToPath(new URL('../helpers/origdst-child.ts', import.meta.url))]);
  const port = (await waitForLine(child, /^port \d+/, 30_000)).slice(5).trim();
  for (const [tool, dest] of [
    ['iptables', lab.originAddress],
    ['ip6tables', lab.originAddress6],
  ] as const) {
    const rule = await lab.run('client', [tool, '-w', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', dest, '--dport', '80', '-j', 'REDIRECT', '--to-ports', port]);
    t.equal(rule.code, 0, rule.stderr);
  }
  const v4 = await curl(lab, `http://${lab.originAddress}/`);
  t.same(JSON.parse(v4.stdout), { local: '::ffff:127.0.0.1', dest: { address: lab.originAddress, port: 80, family: 4 } }, 'IPv4 through an IPv6 socket');
  const v6 = await curl(lab, '-g', `http://[${lab.originAddress6}]/`);
  t.same(JSON.parse(v6.stdout), { local: '::1', dest: { address: lab.originAddress6, port: 80, family: 6 } }, 'IPv6');
});

t.test('the host forwards nothing from a lab but to its other link', async (t) => {
  // A second lab stands for "anywhere else": its origin is on the machine, so even a broken rule
  // would send nothing off it.
  const lab = await createLab();
  t.teardown(lab.close);
  const other = await createLab();
  t.teardown(other.close);
  await startOrigin(other);
  // Routes both ways, so only the host's rules stand between the two.
  t.equal((await lab.run('client', ['ip', 'route', 'add', other.vars.ORIGIN_NET!, 'via', lab.hostClientAddress])).code, 0);
  t.equal((await other.run('origin', ['ip', 'route', 'add', lab.vars.CLIENT_NET!, 'via', other.hostOriginAddress])).code, 0);
  const before = await dropped(lab.hostClientInterface);
  const r = await lab.run('client', ['curl', '-sS', '--max-time', '2', `http://${other.originAddress}/`]);
  t.not(r.code, 0, "the other lab's origin is not reached");
  t.ok((await dropped(lab.hostClientInterface)) > before, "the lab's DROP rule counted the packets");
  t.equal((await other.run('client', ['curl', '-sS', '--max-time', '5', `http://${other.originAddress}/`])).code, 0, 'while its own client reaches it');
});

/** dropped is the packet count of the host's FORWARD DROP rule for packets arriving on a lab interface. */
async function dropped(dev: string): Promise<number> {
  // Columns of -L -v -n -x: pkts bytes target prot opt in out source destination.
  const out = (await run(['iptables', '-w', '-L', 'FORWARD', '-v', '-n', '-x'])).stdout;
  const cols = out.split('\n').map((l) => l.trim().split(/\s+/)).find((c) => c[2] === 'DROP' && c[5] === dev);
  return Number(cols?.[0] ?? Number.NaN);
}
