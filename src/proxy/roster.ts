/**
 * roster: the connections a part of the data plane must be able to reach at shutdown, kept as a
 * list threaded through the connections themselves rather than in a Set.
 *
 *   add(socket) on accept ... delete(socket) on close; values() once, at shutdown
 *
 * Why not a Set. Connections come and go thousands of times a second, and the Set that held them
 * lived as long as the process. Under the bench's CONNECT load (tunnels of about a millisecond,
 * young collections about 25 ms apart), closed sockets and everything hanging off them (the
 * tunnel's closures, its upstream socket, timers) outlived young collections while the gate kept
 * its sockets in a Set: `bench/profile.ts --scenario connect --before keepalive,newconn --gc`
 * counted about 455 KiB promoted per scavenge, 14 full collections in 6 s, and 150 µs of CPU a
 * tunnel; with this list, 4 KiB, one full collection, and about 120 µs. A Set of plain objects
 * added and deleted at that rate did not do it in isolation, so what kept the sockets reachable is
 * not pinned down; the measurement is what this rests on. Unlinking an entry overwrites its
 * neighbours' links and clears its own, so no long-lived object is left pointing at a connection
 * that has gone.
 */
/** Linked is an object as the roster sees it: its links live under its slot's symbols. */
interface Linked {
  [key: symbol]: Linked | Roster<object> | null | undefined;
}

/**
 * Slot names the three links an object carries for a roster. Objects on rosters of one slot take
 * the same shape (V8's hidden class), so the code that handles them stays monomorphic; an object
 * can be on one roster per slot at a time, and each roster knows its own entries from the others'.
 */
export interface Slot {
  readonly prev: symbol;
  readonly next: symbol;
  /** The roster an entry is on (null once off it): membership without a lookup table. */
  readonly on: symbol;
}

/** slot makes the links for one kind of roster; make it once, at module level, and share it. */
export function slot(name: string): Slot {
  return { prev: Symbol(`tollgate.roster.${name}.prev`), next: Symbol(`tollgate.roster.${name}.next`), on: Symbol(`tollgate.roster.${name}.on`) };
}

/**
 * Roster is a set of live objects with O(1) add and delete, walked only as a snapshot. Rosters of
 * different slots link their entries under different symbols, so one object (a client socket held
 * by the gate and by the TLS terminator) can be on both.
 *
 * Rosters made and dropped at run time (one per upstream pool) must share one slot: symbols of
 * their own would give every pool's connections a shape of their own, and the code that handles
 * connections, optimized for the shapes it had seen, was thrown away each time a pool was made
 * again after sitting idle (about 100 functions recompiled in the first second of load, and a
 * p99 several times the steady one).
 */
export class Roster<T extends object> {
  readonly #prev: symbol;
  readonly #next: symbol;
  readonly #on: symbol;
  #head: Linked | null = null;
  #size = 0;

  constructor(links: Slot) {
    this.#prev = links.prev;
    this.#next = links.next;
    this.#on = links.on;
  }

  get size(): number {
    return this.#size;
  }

  /** has tells whether item is on this roster. */
  has(item: T): boolean {
    return (item as unknown as Linked)[this.#on] === this;
  }

  /** add puts item on the roster; adding it twice, or while it is on another roster of the slot, is a bug and throws. */
  add(item: T): void {
    const x = item as unknown as Linked;
    const owner = x[this.#on];
    if (owner === this) throw new Error('already on this roster');
    if (owner != null) throw new Error('already on another roster of the same slot');
    x[this.#on] = this as Roster<object>;
    x[this.#prev] = null;
    x[this.#next] = this.#head;
    if (this.#head !== null) this.#head[this.#prev] = x;
    this.#head = x;
    this.#size++;
  }

  /** delete takes item off the roster; false when it was not on it (another roster's entries included). */
  delete(item: T): boolean {
    const x = item as unknown as Linked;
    if (x[this.#on] !== this) return false;
    const prev = (x[this.#prev] ?? null) as Linked | null;
    const next = (x[this.#next] ?? null) as Linked | null;
    if (prev !== null) prev[this.#next] = next;
    else this.#head = next;
    if (next !== null) next[this.#prev] = prev;
    x[this.#prev] = null;
    x[this.#next] = null;
    x[this.#on] = null;
    this.#size--;
    return true;
  }

  /** values is every item on the roster now, newest first: a copy, so the roster may change while it is walked. */
  values(): T[] {
    const out: T[] = [];
    for (let x = this.#head; x != null; x = (x[this.#next] ?? null) as Linked | null) out.push(x as unknown as T);
    return out;
  }
}
