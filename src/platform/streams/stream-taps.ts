import { Transform } from 'node:stream';

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
