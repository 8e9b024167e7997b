/**
 * jobs: the work a sidecar runs, by name. Each job takes and returns plain data (it crosses a
 * process boundary by structured clone) and loads what it needs only when it runs, so neither the
 * sidecar's table nor the serving process pays for the code of a job it never asked for.
 */
import type { PacCheckJob, PacCheckResult } from '../pac/check.js';
import type { Config } from '../config/schema.js';

/** ConfigJob is one config document to validate, parsed but not yet checked, and the name errors cite. */
export interface ConfigJob {
  readonly data: unknown;
  readonly source: string;
}

/** ParseJob is one config document's text, and the name errors cite. */
export interface ParseJob {
  readonly text: string;
  readonly source: string;
}

/** SidecarJobs maps each job's name to its input and its answer. */
export interface SidecarJobs {
  /** parse: a document's YAML (or JSON) text as plain data (the YAML library). */
  parse: { input: ParseJob; output: unknown };
  /** config: validateConfig, the config schema and its defaults (zod). */
  config: { input: ConfigJob; output: Config };
  /** configText: parse and config in one round trip, for a document that needs nothing done between. */
  configText: { input: ParseJob; output: Config };
  /** pacCheck: every PAC file of an activation run on the validation table (pac-resolver, QuickJS). */
  pacCheck: { input: PacCheckJob; output: PacCheckResult };
}

/** JobName is a job the sidecar knows. */
export type JobName = keyof SidecarJobs;

/** JOBS runs a job by name; the sidecar's message loop and the in-process fallback share it. */
export const JOBS: { readonly [K in JobName]: (input: SidecarJobs[K]['input']) => Promise<SidecarJobs[K]['output']> } = {
  parse: async ({ text, source }) => (await import('../config/parse.js')).parseConfigData(text, source),
  config: async ({ data, source }) => (await import('../config/validate.js')).validateConfig(data, source),
  configText: async ({ text, source }) => (await import('../config/validate.js')).parseConfigText(text, source),
  pacCheck: async (job) => (await import('../pac/checker.js')).checkAll(job),
};

/** isJobName tells a known job's name from anything else a message may carry. */
export function isJobName(v: unknown): v is JobName {
  return typeof v === 'string' && Object.hasOwn(JOBS, v);
}
