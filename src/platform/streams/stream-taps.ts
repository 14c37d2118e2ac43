import { Transform, Writable, type PassThrough } from 'node:stream';

/** A pass-through that shows each chunk to `observe` (hashing, counting bytes) without changing it. */
export function tap(observe: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      observe(chunk);
      done(null, chunk);
    },
  });
}

/** Counts CSV records by the line ends outside quoted fields (a doubled quote toggles twice, so it is neutral). */
export class CsvRecordCounter {
  records = 0;
  private quoted = false;

  push(chunk: Buffer): void {
    let quoted = this.quoted;
    let records = this.records;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === 0x22) quoted = !quoted;
      else if (byte === 0x0a && !quoted) records++;
    }
    this.quoted = quoted;
    this.records = records;
  }
}

/**
 * The end of a pipeline that forwards every chunk to `target` (with its backpressure) until `abandon()`, and from
 * then on discards them: the source still runs to its end. A COPY TO STDOUT stopped midway leaves its connection
 * mid-protocol and unusable; when the consumer of its output fails, the COPY is drained instead, so the transaction
 * around it can roll back on the same connection.
 */
export function abandonableSink(target: PassThrough): { sink: Writable; abandon: () => void } {
  let abandoned = false;
  let waiting: (() => void) | undefined;
  const release = () => {
    const resume = waiting;
    waiting = undefined;
    resume?.();
  };
  target.on('drain', release);
  target.on('close', release);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (abandoned || target.destroyed) return done();
      if (target.write(chunk)) return done();
      waiting = () => done();
    },
    final(done) {
      if (!abandoned && !target.destroyed) target.end();
      done();
    },
  });
  return {
    sink,
    abandon: () => {
      abandoned = true;
      release();
    },
  };
}
