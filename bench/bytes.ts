/**
 * bytes: writing n bytes to a socket with backpressure, for the origin's source and loadgen's uploads.
 */
import type { Socket } from 'node:net';

/** CHUNK is what every bulk writer sends, over and over; the other end only counts bytes. */
const CHUNK = Buffer.alloc(1 << 20, 0x61);

/** writeBytes writes n bytes, waiting for 'drain' whenever the socket asks, then calls done. */
export function writeBytes(sock: Socket, n: number, done: () => void): void {
  let left = n;
  const pump = () => {
    while (left > 0) {
      const k = Math.min(left, CHUNK.length);
      left -= k;
      if (!sock.write(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k))) {
        sock.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}
