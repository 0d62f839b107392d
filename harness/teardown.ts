// The teardown ledger: whatever a run creates is registered here the moment it exists, and one
// path unwinds it in reverse — on normal end, on error, and on SIGINT/SIGTERM alike.

export interface TeardownFailure {
  label: string;
  error: unknown;
}

type Undo = () => Promise<unknown> | unknown;

export class Teardown {
  private entries: { label: string; undo: Undo }[] = [];
  private unwinding: Promise<TeardownFailure[]> | undefined;

  /** Register an undo step; returns a function that runs it early and removes it from the ledger. */
  add(label: string, undo: Undo): () => Promise<void> {
    const entry = { label, undo };
    this.entries.push(entry);
    return async () => {
      const i = this.entries.indexOf(entry);
      if (i < 0) return;
      this.entries.splice(i, 1);
      await undo();
    };
  }

  /** A ledger of its own, unwound as one step of this one (or earlier by `release`); its failures fail that step. */
  child(label: string, onStep?: (label: string) => void): { ledger: Teardown; release: () => Promise<void> } {
    const ledger = new Teardown();
    const release = this.add(label, async () => {
      const failures = await ledger.unwind(onStep);
      if (failures.length) throw new Error(failures.map((f) => `${f.label}: ${(f.error as Error).message ?? String(f.error)}`).join('; '));
    });
    return { ledger, release };
  }

  get size(): number {
    return this.entries.length;
  }

  labels(): string[] {
    return this.entries.map((e) => e.label);
  }

  /**
   * Undo everything, newest first. A failing step does not stop the others: leaving one rule
   * behind is bad, leaving every namespace behind because of it is worse. Idempotent.
   */
  unwind(onStep?: (label: string) => void): Promise<TeardownFailure[]> {
    this.unwinding ??= (async () => {
      const failures: TeardownFailure[] = [];
      while (this.entries.length) {
        const { label, undo } = this.entries.pop()!;
        onStep?.(label);
        try {
          await undo();
        } catch (error) {
          failures.push({ label, error });
        }
      }
      this.unwinding = undefined;
      return failures;
    })();
    return this.unwinding;
  }
}
