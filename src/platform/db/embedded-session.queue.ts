/** What the session queue needs of PGlite: one backend, run one protocol message at a time. */
export interface SingleBackend {
  isInTransaction(): boolean;
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  execProtocolRawStream(
    message: Uint8Array,
    options: { onRawData: (data: Uint8Array) => void },
  ): Promise<void>;
  exec(sql: string): Promise<unknown>;
}

export interface SessionStall {
  /** The connection holding the backend (in a transaction or mid extended-protocol sequence) and sending nothing. */
  holder: number;
  idleMs: number;
  /** Messages of other connections waiting behind it. */
  waiting: number;
}

export interface EmbeddedSessionQueueOptions {
  /**
   * A connection that holds the backend and sends nothing for this long while others wait is taken for a deadlock
   * (code that holds a transaction and waits on a second connection): its transaction is rolled back and its
   * connection closed, so its caller gets an error instead of the whole process hanging. Default 60 s: an export holds its
   * snapshot idle while its encoder drains a finished COPY, and that must not be taken for a deadlock.
   */
  stallMs?: number;
  /** Called when a stall is broken (for the log). */
  onStall?: (stall: SessionStall) => void;
  /** Closes a connection by its handler id (the socket server's); false when there is none. */
  closeConnection?: (handlerId: number) => boolean;
}

interface QueuedMessage {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: Error) => void;
}

const code = (letter: string) => letter.charCodeAt(0);
/** Frontend messages of the extended query protocol up to its Sync: Parse, Bind, Describe, Execute, Close, Flush. */
const EXTENDED_PROTOCOL = new Set(['P', 'B', 'D', 'E', 'C', 'H'].map(code));
const SYNC = code('S');

/**
 * Many wire connections onto PGlite's single backend, the way a server would keep them apart: a connection has the
 * backend to itself from the first message of an extended-protocol sequence to its Sync (node-postgres sends Parse,
 * Bind, Execute, Sync for every parameterised query; interleaving another connection's Parse between them binds the
 * wrong statement) and for the whole of a transaction. pglite-socket's own queue only does the second, and stops
 * for good after one failed message. Drop-in for its `QueryQueueManager` (same four methods).
 */
export class EmbeddedSessionQueue {
  private readonly queue: QueuedMessage[] = [];
  private processing = false;
  /** The connection that ran the last message: the transaction, if one is open, is its. */
  private lastHandlerId: number | null = null;
  /** The connection inside an extended-protocol sequence (sent Parse/Bind/... and no Sync yet). */
  private inSequence: number | null = null;
  private idleSince: number | null = null;
  private readonly watchdog: NodeJS.Timeout;
  private readonly stallMs: number;

  constructor(
    private readonly db: SingleBackend,
    private readonly options: EmbeddedSessionQueueOptions = {},
  ) {
    this.stallMs = options.stallMs ?? 60_000;
    this.watchdog = setInterval(() => this.breakStall(), Math.min(1_000, this.stallMs));
    this.watchdog.unref();
  }

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      void this.process();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  clearQueueForHandler(handlerId: number): void {
    for (let index = this.queue.length - 1; index >= 0; index--) {
      const queued = this.queue[index]!;
      if (queued.handlerId !== handlerId) continue;
      this.queue.splice(index, 1);
      queued.reject(new Error('Handler disconnected'));
    }
  }

  /** A connection went away: whatever it held (a transaction, a half-sent sequence) is given up. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.holder() !== handlerId) return;
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    this.inSequence = null;
    this.lastHandlerId = null;
    this.idleSince = null;
    await this.process();
  }

  stop(): void {
    clearInterval(this.watchdog);
  }

  /** The connection that must run next, or null when any may. */
  private holder(): number | null {
    if (this.inSequence !== null) return this.inSequence;
    return this.db.isInTransaction() ? this.lastHandlerId : null;
  }

  private next(): QueuedMessage | undefined {
    const holder = this.holder();
    if (holder === null) return this.queue.shift();
    const index = this.queue.findIndex((queued) => queued.handlerId === holder);
    return index === -1 ? undefined : this.queue.splice(index, 1)[0];
  }

  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (let queued = this.next(); queued; queued = this.next()) {
        this.idleSince = null;
        await this.run(queued);
      }
      // Others wait behind a holder that sends nothing: the watchdog times how long.
      if (this.queue.length > 0) this.idleSince ??= Date.now();
      else this.idleSince = null;
    } finally {
      this.processing = false;
    }
  }

  private async run(queued: QueuedMessage): Promise<void> {
    const type = queued.message[0]!;
    if (EXTENDED_PROTOCOL.has(type)) this.inSequence = queued.handlerId;
    else if (type === SYNC && this.inSequence === queued.handlerId) this.inSequence = null;
    this.lastHandlerId = queued.handlerId;
    let bytes = 0;
    try {
      await this.db.runExclusive(() =>
        this.db.execProtocolRawStream(queued.message, {
          onRawData: (data) => {
            bytes += data.length;
            queued.onData(data);
          },
        }),
      );
      queued.resolve(bytes);
    } catch (error) {
      queued.reject(error as Error);
    }
  }

  private breakStall(): void {
    const holder = this.holder();
    if (this.processing || holder === null || this.idleSince === null || this.queue.length === 0) return;
    const idleMs = Date.now() - this.idleSince;
    if (idleMs < this.stallMs) return;
    this.idleSince = null;
    this.options.onStall?.({ holder, idleMs, waiting: this.queue.length });
    // Closing the connection gives up what it held (its handler calls clearTransactionIfNeeded); so does this.
    if (!this.options.closeConnection?.(holder)) void this.clearTransactionIfNeeded(holder);
  }
}
