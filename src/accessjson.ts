/**
 * accessjson: an access entry as one JSON line, the same text `JSON.stringify(entry)` gives for an
 * entry built the way txlog builds it (its fields in AccessEntry's order, optional ones last).
 *
 * It is written out field by field because the line is made for every request and tunnel:
 * JSON.stringify walks the object's properties generically, and under the bench's CONNECT load the
 * line was the largest single share of Tollgate's own CPU per tunnel. Strings that need no escaping
 * (no quote, backslash, control character or surrogate: nearly all of them) are quoted as they are;
 * any other string goes through JSON.stringify itself, so escaping stays the runtime's. The
 * differential test in test/accessjson.test.ts holds this against JSON.stringify on generated
 * entries.
 */
import type { AccessEntry } from './log.js';

/** NEEDS_ESCAPE matches what JSON.stringify would not copy as it is (lone surrogates included). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

/** groupsJson caches the encoded group list per list: a session's groups are a readonly array, replaced on change. */
const groupsJson = new WeakMap<readonly string[], string>();

function groups(list: readonly string[]): string {
  let json = groupsJson.get(list);
  if (json === undefined) {
    json = `[${list.map(str).join(',')}]`;
    groupsJson.set(list, json);
  }
  return json;
}

/** accessJson renders one access entry as a JSON object (no newline). */
export function accessJson(e: AccessEntry): string {
  let line =
    `{"time":${str(e.time)},"node":${str(e.node)},"login":${str(e.login)},"department":${str(e.department)},` +
    `"groups":${groups(e.groups)},"location":${str(e.location)},"sublocation":${str(e.sublocation)},` +
    `"clientIp":${str(e.clientIp)},"method":${str(e.method)},"url":${str(e.url)},"host":${str(e.host)},` +
    `"status":${num(e.status)},"action":${str(e.action)},"reason":${str(e.reason)},"protocol":${str(e.protocol)},` +
    `"reqBytes":${num(e.reqBytes)},"respBytes":${num(e.respBytes)},"durationMs":${num(e.durationMs)}`;
  if (e.forwardingMethod !== undefined) line += `,"forwardingMethod":${str(e.forwardingMethod)}`;
  if (e.decrypted !== undefined) line += `,"decrypted":${e.decrypted ? 'true' : 'false'}`;
  if (e.sni !== undefined) line += `,"sni":${str(e.sni)}`;
  return `${line}}`;
}
