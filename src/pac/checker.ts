/**
 * checker: validates an activation's PAC files on the table in the sandbox (evaluate.ts). It runs as
 * a sidecar job (check.ts hands it over), in a process that exits with everything it loaded.
 */
import { answerProblem, PacEvaluator, PacScriptError, type PacEnv } from './evaluate.js';
import type { PacCheckJob, PacCheckResult } from './check.js';

/**
 * checkPac compiles one PAC text and evaluates it on the table; it returns the problems (empty
 * when the file is fine) and collects warnings.
 */
export async function checkPac(text: string, urls: readonly string[], env: PacEnv, warnings: string[], where: string): Promise<string[]> {
  let ev: PacEvaluator;
  try {
    ev = await PacEvaluator.compile(text, env);
  } catch (err) {
    if (err instanceof PacScriptError) return [`${where}: ${err.message}`];
    throw err;
  }
  const problems: string[] = [];
  let warned = false;
  try {
    for (const url of urls) {
      try {
        const a = await ev.run(url);
        const p = answerProblem(a.result);
        if (p !== null) problems.push(`${where}: FindProxyForURL for ${url} ${p}`);
        if (a.extraPatterns.length > 0 && !warned) {
          warned = true;
          warnings.push(`${where}: shExpMatch was called with ${a.extraPatterns[0]!.args.length - 1} patterns; it tests only the first, so write one shExpMatch per pattern joined with ||`);
        }
      } catch (err) {
        if (!(err instanceof PacScriptError)) throw err;
        problems.push(`${where}: ${err.message}`);
        break; // one throw says enough, and a runaway script would cost its time limit per URL
      }
      if (problems.length >= 5) break; // the first few say enough
    }
  } finally {
    ev.dispose();
  }
  return problems;
}

/** checkAll runs every check of a job; a file's later sample clients are skipped once one has problems. */
export async function checkAll(job: PacCheckJob): Promise<PacCheckResult> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const hosts = new Map(job.hosts);
  for (const c of job.checks) {
    for (const run of c.runs) {
      const problems = await checkPac(run.text, job.urls, { clientIp: run.clientIp, hosts }, warnings, c.label);
      errors.push(...problems);
      if (problems.length > 0) break;
    }
  }
  return { errors, warnings };
}
