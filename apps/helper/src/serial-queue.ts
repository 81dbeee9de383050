import { HelperError } from "@knockport/protocol";

/** Runs tasks one after another; refuses new ones past `limit` waiting so a flood cannot grow memory. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly limit: number) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.limit) return Promise.reject(new HelperError("OVERLOADED"));
    this.waiting += 1;
    const result = this.tail.then(task, task);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result.finally(() => {
      this.waiting -= 1;
    });
  }
}
