/**
 * variables: custom PAC files with the variables ZIA's hosted PAC files take.
 *
 *   ${GATEWAY}            the primary gateway's host (the file writes the port: `PROXY ${GATEWAY}:9400`)
 *   ${SECONDARY_GATEWAY}  the first secondary's host (the primary's when there is none)
 *   ${GATEWAY_HOST}       the primary gateway as host:port (`PROXY ${GATEWAY_HOST}`)
 *   ${SRCIP}              the address of the client that downloads the file, as Tollgate sees it
 *
 * A file is split into text and variables once, at activation; the gateways are filled in then, and
 * only ${SRCIP} is left for each request. Every value is a host, port or IP address, so none can
 * end a string literal it is put into.
 */
import { parseHostPort } from '../config/ip.js';

export const PAC_VARIABLES = ['GATEWAY', 'SECONDARY_GATEWAY', 'GATEWAY_HOST', 'SRCIP'] as const;
export type PacVariable = (typeof PAC_VARIABLES)[number];

/** PacTemplate is a custom file with its gateway variables filled in: text pieces around ${SRCIP}. */
export interface PacTemplate {
  /** The text between ${SRCIP}s; one piece when the file has none. */
  readonly pieces: readonly string[];
  /** Names in ${...} form that are not variables (left as they are). */
  readonly unknown: readonly string[];
}

/** gatewayVariables gives the gateway variables' values for a list of host:port gateways. */
export function gatewayVariables(gateways: readonly string[]): Record<Exclude<PacVariable, 'SRCIP'>, string> {
  const host = (g: string): string => {
    const hp = parseHostPort(g);
    if (hp === null) throw new Error(`PAC gateway "${g}" is not host:port`);
    return hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  };
  const primary = gateways[0];
  if (primary === undefined) throw new Error('a PAC file needs at least one gateway');
  return { GATEWAY: host(primary), SECONDARY_GATEWAY: host(gateways[1] ?? primary), GATEWAY_HOST: primary };
}

/** prepareTemplate fills in the gateway variables and splits the text at each ${SRCIP}. */
export function prepareTemplate(text: string, gateways: readonly string[]): PacTemplate {
  const vars = gatewayVariables(gateways);
  const unknown = new Set<string>();
  const pieces: string[] = [];
  let current = '';
  let last = 0;
  for (const m of text.matchAll(/\$\{([A-Za-z0-9_.]+)\}/g)) {
    current += text.slice(last, m.index);
    last = m.index + m[0].length;
    const name = m[1]!;
    if (name === 'SRCIP') {
      pieces.push(current);
      current = '';
    } else if (name in vars) current += vars[name as keyof typeof vars];
    else {
      unknown.add(name);
      current += m[0];
    }
  }
  pieces.push(current + text.slice(last));
  return { pieces, unknown: [...unknown] };
}

/** renderTemplate puts a client address into a prepared file. */
export function renderTemplate(t: PacTemplate, srcIp: string): string {
  return t.pieces.length === 1 ? t.pieces[0]! : t.pieces.join(srcIp);
}
