/**
 * netns: a routed lab in network namespaces for the transparent-listener tests.
 *
 *   client ns (10.213.B.2) --veth-- host (10.213.B.1 | 10.213.B.5) --veth-- origin ns (10.213.B.6)
 *                                    \_ nat PREROUTING -i <client veth>: tcp 80/443 REDIRECT to host ports
 *
 * The host (this process's namespace) routes between the two links: forwarding is switched on for the
 * two host-side veth ends only (net.ipv4.conf.<if>.forwarding), so nothing arriving on any other
 * interface is forwarded, and the namespaces have routes to each other's link and nothing else, so no
 * packet can leave the machine. IPv6 (ULA fd54:6f6c:6c67::/48, RFC 4193) is set up on both links for
 * the REDIRECT of IPv6 connections; it is redirected to the host, never forwarded.
 *
 * A GRE variant (`gre: true`) adds a GRE tunnel between the client namespace and the host over the
 * client veth and routes the client's origin traffic through it, as a branch router would; the REDIRECT
 * rules then match on the tunnel interface. greSupport() tells whether this kernel has GRE at all.
 *
 * Every name carries `tgl<pid>x<n>`: parallel runs never collide, and the sweep at the start of
 * each lab removes what a dead process of ours left behind (namespaces, links, iptables rules and
 * chains), never what a live one is using. close() tears the lab down, and an exit or signal handler
 * does the same when a test dies before its teardown.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const PREFIX = 'tgl';
const NAME_RE = /tgl(\d+)x(\d+)/;
/** IPV4_BASE is 10.213.0.0/16; each lab takes one /28 of it (three /30 links). */
const IPV4_BASE = [10, 213] as const;
const BLOCKS = 4096;
const IPV6_PREFIX = 'fd54:6f6c:6c67';
const CMD_TIMEOUT_MS = 15_000;

/** RunResult is what one command printed and how it ended. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * commandLog is every command the labs of this process ran, as a shell line (set-up, checks, redirects),
 * so docs/lab-routing.md can be checked to show only commands that really ran.
 */
export const commandLog: string[] = [];

/** run executes argv (in `ns` when given) and resolves with its output; it never rejects on a non-zero exit. */
export function run(argv: readonly string[], ns?: string, timeoutMs = CMD_TIMEOUT_MS): Promise<RunResult> {
  const full = ns === undefined ? argv : ['ip', 'netns', 'exec', ns, ...argv];
  commandLog.push(full.join(' '));
  return new Promise((resolve) => {
    execFile(full[0]!, full.slice(1), { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : null;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err !== null && code === null ? err.message : '') });
    });
  });
}

/** must is run() for set-up steps: a failure throws with the command and what it printed. */
async function must(argv: readonly string[], ns?: string): Promise<string> {
  const r = await run(argv, ns);
  if (r.code !== 0) throw new Error(`lab set-up failed: ${ns ? `[${ns}] ` : ''}${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** quiet runs a teardown command synchronously and ignores its failure (the thing may already be gone). */
function quiet(argv: readonly string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], timeout: CMD_TIMEOUT_MS }).toString();
  } catch {
    // Already removed, or never created: either way there is nothing left to remove.
    return '';
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** forward switches IPv4 forwarding on for packets arriving on one interface (and no other). */
function forward(dev: string): void {
  const path = `/proc/sys/net/ipv4/conf/${dev}/forwarding`;
  commandLog.push(`echo 1 > ${path}`);
  writeFileSync(path, '1');
}

/** deadOwner tells whether a name is one of this helper's, and if so whether its creator is gone. */
function deadOwner(name: string): boolean {
  const m = NAME_RE.exec(name);
  return m !== null && !alive(Number(m[1]));
}

/**
 * removeByName deletes everything whose name matches `match`: processes in those namespaces (all of
 * them started by a lab of ours), the namespaces, host links, and iptables rules and chains in the nat
 * and filter tables of both families. Synchronous, so exit handlers can run it.
 */
function removeByName(match: (name: string) => boolean): void {
  for (const line of quiet(['ip', 'netns', 'list']).split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    if (!ns.startsWith(PREFIX) || !match(ns)) continue;
    for (const pid of quiet(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Exited between the listing and the kill.
      }
    }
    quiet(['ip', 'netns', 'del', ns]);
  }
  for (const line of quiet(['ip', '-o', 'link', 'show']).split('\n')) {
    const dev = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (dev !== undefined && dev.startsWith(PREFIX) && match(dev)) quiet(['ip', 'link', 'del', dev]);
  }
  for (const tool of ['iptables', 'ip6tables']) {
    for (const table of ['nat', 'filter']) {
      const rules = quiet([tool, '-w', '-t', table, '-S']).split('\n');
      for (const rule of rules) {
        if (!rule.startsWith('-A ')) continue;
        const names = rule.match(new RegExp(NAME_RE.source, 'g')) ?? [];
        if (names.length > 0 && names.some(match)) quiet([tool, '-w', '-t', table, ...rule.replace(/^-A /, '-D ').split(' ')]);
      }
      for (const rule of rules) {
        const chain = /^-N (\S+)/.exec(rule)?.[1];
        if (chain !== undefined && chain.startsWith(PREFIX) && match(chain)) {
          quiet([tool, '-w', '-t', table, '-F', chain]);
          quiet([tool, '-w', '-t', table, '-X', chain]);
        }
      }
    }
  }
}

/** sweepLeftovers removes what labs of processes that no longer run left behind. */
export function sweepLeftovers(): void {
  removeByName(deadOwner);
}

/** greSupport tells whether this kernel can make a GRE tunnel (tried in a throwaway namespace). */
export async function greSupport(): Promise<{ readonly ok: boolean; readonly reason: string }> {
  const ns = `${PREFIX}${process.pid}x${nextId++}-gre-probe`;
  try {
    await must(['ip', 'netns', 'add', ns]);
    const r = await run(['ip', 'tunnel', 'add', 'probe0', 'mode', 'gre', 'local', '10.213.255.1', 'remote', '10.213.255.2'], ns);
    return r.code === 0 ? { ok: true, reason: 'GRE tunnels can be created' } : { ok: false, reason: `ip tunnel add ... mode gre: ${r.stderr.trim()}` };
  } finally {
    quiet(['ip', 'netns', 'del', ns]);
  }
}

/** LabOptions choose the GRE variant. */
export interface LabOptions {
  /** Carry the client's traffic to the host in a GRE tunnel (check greSupport() first). */
  readonly gre?: boolean;
}

/** Lab is one running lab. Addresses are fixed for its life; close() removes all of it. */
export interface Lab {
  readonly name: string;
  readonly clientNs: string;
  readonly originNs: string;
  /** The client's address (its veth, or its GRE inner address in the GRE variant). */
  readonly clientAddress: string;
  /** The host's address facing the client: where REDIRECTed connections land, so listeners bind here. */
  readonly hostClientAddress: string;
  readonly originAddress: string;
  readonly hostOriginAddress: string;
  readonly clientAddress6: string;
  readonly hostClientAddress6: string;
  readonly originAddress6: string;
  /** The interface the client's traffic arrives on at the host (the veth, or the GRE tunnel). */
  readonly hostClientInterface: string;
  /** vars are this lab's values under the shell variable names docs/lab-routing.md uses. */
  readonly vars: Readonly<Record<string, string>>;
  /**
   * redirect sends the client's TCP port 80 / 443 traffic, as it arrives at the host, to these host
   * ports (iptables and ip6tables nat PREROUTING REDIRECT, in a chain of the lab's name). Call it once.
   */
  redirect(ports: { readonly http?: number; readonly tls?: number }): Promise<void>;
  /** run executes argv in the client or origin namespace. */
  run(where: 'client' | 'origin', argv: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** spawn starts a long-running process in a namespace; close() kills it. */
  spawn(where: 'client' | 'origin', argv: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess;
  close(): Promise<void>;
}

let nextId = 0;
const open = new Set<string>();
let handlersInstalled = false;

/** installHandlers makes sure a test that exits or is signalled without its teardown still cleans up. */
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanAll = () => {
    for (const name of open) removeByName((n) => NAME_RE.exec(n)?.[0] === name);
    open.clear();
  };
  process.once('exit', cleanAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanAll();
      // Die of the same signal, as the process would have without this handler.
      process.kill(process.pid, sig);
    });
  }
}

/** freeBlock picks a /28 of 10.213.0.0/16 that no interface on the host uses yet. */
async function freeBlock(seed: number): Promise<number> {
  const used = new Set<number>();
  for (const m of (await must(['ip', '-4', '-o', 'addr', 'show'])).matchAll(/inet 10\.213\.(\d+)\.(\d+)/g)) {
    used.add(Number(m[1]) * 16 + (Number(m[2]) >> 4));
  }
  for (let i = 0; i < BLOCKS; i++) {
    const b = (seed + i) % BLOCKS;
    if (!used.has(b) && b !== BLOCKS - 1) return b; // the last block is greSupport()'s probe
  }
  throw new Error('lab set-up failed: no free /28 left in 10.213.0.0/16');
}

/** createLab builds a lab; the caller must close() it (t.teardown). */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  sweepLeftovers();
  installHandlers();
  const id = nextId++;
  const name = `${PREFIX}${process.pid}x${id}`;
  open.add(name);
  const children = new Set<ChildProcess>();
  const close = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all([...children].map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    removeByName((n) => NAME_RE.exec(n)?.[0] === name);
    open.delete(name);
  };
  try {
    const block = await freeBlock((process.pid * 7 + id * 131) % BLOCKS);
    const v4 = (off: number) => `${IPV4_BASE[0]}.${IPV4_BASE[1]}.${block >> 4}.${((block & 15) << 4) + off}`;
    // One /64 per link: the fourth group is the block and the link number, written canonically
    // (RFC 5952: no leading zeros) so addresses compare as the kernel prints them.
    const net6 = (link: 1 | 2) => `${IPV6_PREFIX}:${((block << 4) | link).toString(16)}`;
    const v6 = (link: 1 | 2, host: number) => `${net6(link)}::${host}`;
    const clientNs = `${name}-client`;
    const originNs = `${name}-origin`;
    const hc = `${name}hc`;
    const ho = `${name}ho`;
    const gre = `${name}g`;
    const lab = {
      name,
      clientNs,
      originNs,
      clientAddress: opts.gre ? v4(10) : v4(2),
      hostClientAddress: opts.gre ? v4(9) : v4(1),
      originAddress: v4(6),
      hostOriginAddress: v4(5),
      clientAddress6: v6(1, 2),
      hostClientAddress6: v6(1, 1),
      originAddress6: v6(2, 2),
      hostClientInterface: opts.gre ? gre : hc,
      vars: {
        CLIENT_NS: clientNs,
        ORIGIN_NS: originNs,
        HOST_CLIENT_IF: hc,
        HOST_ORIGIN_IF: ho,
        CLIENT_PEER: `${name}c`,
        ORIGIN_PEER: `${name}o`,
        CHAIN: name,
        HOST_CLIENT_IP: v4(1),
        CLIENT_IP: v4(2),
        HOST_ORIGIN_IP: v4(5),
        ORIGIN_IP: v4(6),
        CLIENT_NET: `${v4(0)}/30`,
        ORIGIN_NET: `${v4(4)}/30`,
        GRE_NET: `${v4(8)}/30`,
        HOST_CLIENT_IP6: v6(1, 1),
        CLIENT_IP6: v6(1, 2),
        HOST_ORIGIN_IP6: v6(2, 1),
        ORIGIN_IP6: v6(2, 2),
        ORIGIN_NET6: `${net6(2)}::/64`,
      },
    };
    const host = (argv: string[]) => must(argv);
    const inNs = (ns: string, argv: string[]) => must(argv, ns);

    await host(['ip', 'netns', 'add', clientNs]);
    await host(['ip', 'netns', 'add', originNs]);
    for (const [ns, hostEnd, nsEnd, link] of [
      [clientNs, hc, 'c', 1],
      [originNs, ho, 'o', 2],
    ] as const) {
      const hostIp = link === 1 ? v4(1) : v4(5);
      const nsIp = link === 1 ? v4(2) : v4(6);
      await host(['ip', 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', `${name}${nsEnd}`]);
      await host(['ip', 'link', 'set', `${name}${nsEnd}`, 'netns', ns, 'name', `veth-${nsEnd}`]);
      await host(['ip', 'addr', 'add', `${hostIp}/30`, 'dev', hostEnd]);
      await host(['ip', '-6', 'addr', 'add', `${v6(link, 1)}/64`, 'dev', hostEnd, 'nodad']);
      await host(['ip', 'link', 'set', hostEnd, 'up']);
      forward(hostEnd);
      await inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
      await inNs(ns, ['ip', 'addr', 'add', `${nsIp}/30`, 'dev', `veth-${nsEnd}`]);
      await inNs(ns, ['ip', '-6', 'addr', 'add', `${v6(link, 2)}/64`, 'dev', `veth-${nsEnd}`, 'nodad']);
      await inNs(ns, ['ip', 'link', 'set', `veth-${nsEnd}`, 'up']);
    }
    // The origin answers the client's link through the host; IPv6 to the origin only ever reaches the
    // host's REDIRECT, so the client's IPv6 route is enough.
    await inNs(originNs, ['ip', 'route', 'add', lab.vars.CLIENT_NET!, 'via', v4(5)]);
    await inNs(originNs, ['ip', 'route', 'add', lab.vars.GRE_NET!, 'via', v4(5)]);
    await inNs(clientNs, ['ip', '-6', 'route', 'add', lab.vars.ORIGIN_NET6!, 'via', v6(1, 1)]);
    if (opts.gre) {
      // RFC 2784 GRE between the client's veth address and the host's, inner addresses on a /30 of
      // their own, and the client's route to the origin through the tunnel.
      await inNs(clientNs, ['ip', 'tunnel', 'add', 'gre-c', 'mode', 'gre', 'local', v4(2), 'remote', v4(1), 'ttl', '64']);
      await inNs(clientNs, ['ip', 'addr', 'add', `${v4(10)}/30`, 'dev', 'gre-c']);
      await inNs(clientNs, ['ip', 'link', 'set', 'gre-c', 'up']);
      await inNs(clientNs, ['ip', 'route', 'add', lab.vars.ORIGIN_NET!, 'dev', 'gre-c']);
      await host(['ip', 'tunnel', 'add', gre, 'mode', 'gre', 'local', v4(1), 'remote', v4(2), 'ttl', '64']);
      await host(['ip', 'addr', 'add', `${v4(9)}/30`, 'dev', gre]);
      await host(['ip', 'link', 'set', gre, 'up']);
      forward(gre);
    } else {
      await inNs(clientNs, ['ip', 'route', 'add', lab.vars.ORIGIN_NET!, 'via', v4(1)]);
    }
    // Forwarding between the lab's links is accepted even where the host's FORWARD policy drops, and
    // anything else arriving on them is dropped, so no packet of the lab is ever forwarded off the machine
    // (the namespaces have no such routes either). -I puts each rule first: the DROPs end up last.
    const cin = lab.hostClientInterface;
    await host(['iptables', '-w', '-I', 'FORWARD', '-i', cin, '-j', 'DROP']);
    await host(['iptables', '-w', '-I', 'FORWARD', '-i', ho, '-j', 'DROP']);
    await host(['iptables', '-w', '-I', 'FORWARD', '-i', cin, '-o', ho, '-j', 'ACCEPT']);
    await host(['iptables', '-w', '-I', 'FORWARD', '-i', ho, '-o', cin, '-j', 'ACCEPT']);
    const where = (w: 'client' | 'origin') => (w === 'client' ? clientNs : originNs);
    return {
      ...lab,
      run: (w, argv, timeoutMs) => run(argv, where(w), timeoutMs),
      spawn: (w, argv, env) => {
        const child = spawn('ip', ['netns', 'exec', where(w), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
        children.add(child);
        return child;
      },
      redirect: async (ports) => {
        for (const tool of ['iptables', 'ip6tables']) {
          await host([tool, '-w', '-t', 'nat', '-N', name]);
          for (const [dport, to] of [
            ['80', ports.http],
            ['443', ports.tls],
          ] as const) {
            if (to !== undefined) await host([tool, '-w', '-t', 'nat', '-A', name, '-p', 'tcp', '--dport', dport, '-j', 'REDIRECT', '--to-ports', String(to)]);
          }
          await host([tool, '-w', '-t', 'nat', '-A', 'PREROUTING', '-i', cin, '-j', name]);
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** waitForLine resolves with the first line of a child's stdout that matches, or rejects when it exits first. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before printing ${re}; stderr: ${err}`));
    });
  });
}
