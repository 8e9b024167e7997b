/**
 * netns-child: makes a lab in a process of its own and waits, so a test can kill that process and see
 * what is left behind.
 *
 *   node --import tsx test/helpers/netns-child.ts
 *
 * Prints the lab's name once it is up, then waits to be signalled.
 */
import { createLab } from './netns.js';

const lab = await createLab();
process.stdout.write(`lab ${lab.name}\n`);
setInterval(() => undefined, 60_000);
