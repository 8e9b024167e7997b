/**
 * explain: says in plain words why a PAC file gave its answer, from the predicate calls the
 * sandbox recorded while it ran.
 *
 * In a generated file every rule is `if (<one predicate>) return ...`, so the last predicate that
 * held is the rule that decided, and it is named after its config entry. In a custom file the
 * last condition that held is reported as such: with `&&`, `||` or `!` it is a strong hint, not
 * a proof.
 */
import type { PacAnswer, PacCall } from './evaluate.js';
import { ruleFor, type PacRule } from './generate.js';

/** callText renders a recorded call as script: `shExpMatch("a.b", "*.b")`. */
export function callText(c: PacCall): string {
  return `${c.fn}(${c.args.map((a) => JSON.stringify(a)).join(', ')})`;
}

/** explainAnswer gives the one line that says which rule matched. */
export function explainAnswer(answer: PacAnswer, rules: readonly PacRule[] | null): string {
  let held: PacCall | null = null;
  for (let i = answer.calls.length - 1; i >= 0 && held === null; i--) if (answer.calls[i]!.result === true) held = answer.calls[i]!;
  if (rules !== null) {
    if (held === null) return 'no rule matched: everything else goes to the gateways, in order';
    const r = ruleFor(rules, held.fn, held.args);
    return r === null ? `${callText(held)} held (no generated rule has that test)` : `${r.why}: ${callText(held)}`;
  }
  if (held === null) return `no condition held (${answer.calls.length} tested): the file's final return`;
  return `last condition that held: ${callText(held)}`;
}
