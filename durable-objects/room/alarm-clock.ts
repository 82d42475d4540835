/**
 * The object's one alarm, shared by everything that needs a wake-up (the turn heartbeat, outbox retries, a socket's
 * credential expiry): `by(at)` makes sure it fires no later than `at`, with a storage write only when it would fire
 * later or not at all.
 */
export class AlarmClock {
  /** When the alarm is set for; undefined until read once (after that this object is the only one that sets it). */
  private at: number | null | undefined = undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  by(at: number): void {
    if (this.at === undefined) {
      void this.storage.getAlarm().then((current) => {
        this.at ??= current;
        this.by(at);
      });
      return;
    }
    if (this.at !== null && this.at <= at) return;
    this.at = at;
    void this.storage.setAlarm(at);
  }

  /** The alarm fired (or was deleted): nothing is set until the next `by`. */
  fired(): void {
    this.at = null;
  }
}
