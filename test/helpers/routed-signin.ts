/**
 * routed-signin: a browser in a routed lab network signs in, run inside the client namespace.
 *
 *   ip netns exec <client ns> node --import tsx test/helpers/routed-signin.ts '<json>'
 *     json: { start, from, user, password, routes: { "<host>": "<address>:<port>" } }
 *
 * It was never told about a proxy: each URL's connection goes to the address its host is routed to
 * (port 80 anywhere is REDIRECTed to Tollgate's transparent listener on the way), in origin form.
 * Prints one JSON line: where the sign-in ended and with what status.
 */
import { FlowClient } from './flow.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { start: string; from: string; user: string; password: string; routes: Record<string, string> };
const client = new FlowClient(0, args.from, undefined, (u) => {
  const to = args.routes[u.hostname];
  if (to === undefined) throw new Error(`no route for ${u.hostname}`);
  const i = to.lastIndexOf(':');
  return { host: to.slice(0, i), port: Number(to.slice(i + 1)) };
});
try {
  const end = await client.signIn(args.start, args.user, args.password);
  process.stdout.write(`${JSON.stringify({ status: end.reply.status, url: end.url, body: end.reply.body.slice(0, 200) })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`);
  process.exitCode = 1;
}
