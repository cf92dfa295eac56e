/**
 * A Prometheus counter whose value its owner keeps as a plain number (a
 * component's counters object) and the registry reads when it is scraped.
 */
import { Counter, type Registry } from 'prom-client';

/** Registers counter `name` on `registry`, reading its value from `read` at each scrape. */
export function registerMirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
