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
/** Linked is an object as the roster sees it: its links live under the roster's own symbols. */
interface Linked {
  [key: symbol]: Linked | null | undefined;
}

/**
 * Roster is a set of live objects with O(1) add and delete, walked only as a snapshot. Each roster
 * links its entries under symbols of its own, so one object (a client socket held by the gate and
 * by the TLS terminator) can be on several rosters.
 */
export class Roster<T extends object> {
  readonly #prev = Symbol('tollgate.roster.prev');
  readonly #next = Symbol('tollgate.roster.next');
  /** Set to the entry itself while it is on the roster: membership without a lookup table. */
  readonly #on = Symbol('tollgate.roster.on');
  #head: Linked | null = null;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** has tells whether item is on this roster. */
  has(item: T): boolean {
    const x = item as unknown as Linked;
    return x[this.#on] === x;
  }

  /** add puts item on the roster; adding it twice is a bug and throws. */
  add(item: T): void {
    const x = item as unknown as Linked;
    if (x[this.#on] === x) throw new Error('already on this roster');
    x[this.#on] = x;
    x[this.#prev] = null;
    x[this.#next] = this.#head;
    if (this.#head !== null) this.#head[this.#prev] = x;
    this.#head = x;
    this.#size++;
  }

  /** delete takes item off the roster; false when it was not on it. */
  delete(item: T): boolean {
    const x = item as unknown as Linked;
    if (x[this.#on] !== x) return false;
    const prev = x[this.#prev] ?? null;
    const next = x[this.#next] ?? null;
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
    for (let x = this.#head; x != null; x = x[this.#next] ?? null) out.push(x as unknown as T);
    return out;
  }
}
