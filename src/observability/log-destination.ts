import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

/**
 * Each batch written is published here (`{ start, bytes, ms }`, performance.now() times) for
 * whoever subscribes (bench/tail-probe.mjs); with no subscriber it costs one property read.
 */
export const logWriteChannel = channel('countersign:log-write');

export interface BatchedDestination extends DestinationStream {
  /** Write out what is pending, synchronously; then `cb`. */
  flush(cb?: (err?: Error) => void): void;
}

/**
 * The log's destination: lines logged within `delayMs` (or until 16 KiB are pending) are joined
 * and written in one piece, so a busy proxy makes one write per batch instead of one per
 * access-log line. A line reaches its destination at most `delayMs` after it was logged.
 *
 * A batch is written synchronously on the event loop (`writeAll`): one short write system call
 * per batch, as nginx writes a buffered access log. No thread-pool round trip per batch (its two
 * context switches cost more than the write on a busy core), and no queue that an exit could
 * drop: nothing is lost at shutdown or at any exit, the 'exit' hook writes what is pending.
 * Should the reader of a pipe stop reading, writes wait for it (Docker's default "blocking" log
 * delivery does the same); should it go away (EPIPE), logging stops and the proxy keeps serving.
 */
export function batchedDestination(fd = 1, delayMs = 5): BatchedDestination {
  /** The reader went away (EPIPE): nothing more can be logged there, and the proxy goes on. */
  let broken = false;
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    const text = pending;
    pending = '';
    if (broken) return;
    const start = logWriteChannel.hasSubscribers ? performance.now() : 0;
    try {
      writeAll(fd, text);
    } catch (err) {
      // A broken pipe stops logging; any other refusal (a closed descriptor, say) loses this
      // batch rather than stopping the proxy.
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') broken = true;
    }
    if (start !== 0) logWriteChannel.publish({ start, bytes: text.length, ms: performance.now() - start });
  };
  process.once('exit', release);
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= 16_384) release();
      else timer ??= setTimeout(release, delayMs);
    },
    flush(cb) {
      release();
      cb?.();
    },
  };
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Write all of `text` to `fd`, synchronously. The string goes to the system call as it is (no
 * Buffer of its own: pino's sonic-boom encoded each batch twice more, for its byte count and for
 * its bookkeeping after the write, which cost more than the write itself); only a partial write
 * makes one. A descriptor that is full (EAGAIN: a non-blocking pipe whose reader is behind) is
 * waited for, 10 ms at a time, as sonic-boom does: the line is kept, not dropped. Other errors
 * are thrown, with the part not yet written lost.
 */
export function writeAll(fd: number, text: string): void {
  const bytes = Buffer.byteLength(text);
  let written = retrying(() => writeSync(fd, text));
  if (written >= bytes) return;
  const rest = Buffer.from(text);
  while (written < bytes) {
    const from = written;
    written += retrying(() => writeSync(fd, rest, from, bytes - from));
  }
}

function retrying(write: () => number): number {
  for (;;) {
    try {
      return write();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EBUSY') throw err;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}
