/**
 * A vitest reporter that ends the run with one line per skip reason (see test/fixtures/skip.ts): how many tests
 * were skipped, in which files, why, and what enables them. Prints nothing when nothing was skipped that way.
 */
import { relative } from 'node:path';
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

export default class SkipSummary implements Reporter {
  private lines: string[] = [];

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped = new Map<string, { tests: number; files: Set<string> }>();
    for (const module of modules)
      for (const test of module.children.allTests('skipped')) {
        const reason = skipReason(test);
        if (reason === undefined) continue;
        const entry = skipped.get(reason) ?? { tests: 0, files: new Set<string>() };
        entry.tests += 1;
        entry.files.add(relative(process.cwd(), module.moduleId));
        skipped.set(reason, entry);
      }
    this.lines = [...skipped].map(
      ([reason, { tests, files }]) =>
        `SKIPPED ${tests} test${tests === 1 ? '' : 's'} (${[...files].sort().join(', ')}): ${reason}`,
    );
  }

  // The default reporter prints its summary in onFinished, which runs after every onTestRunEnd, and reporters run
  // in the order configured: printing here puts these lines last.
  onFinished(): void {
    for (const line of this.lines) console.log(line);
  }
}

/** The reason recorded on the test's nearest suite that has one. */
function skipReason(test: TestCase): string | undefined {
  for (let p: TestSuite | TestModule = test.parent; ; p = p.parent) {
    const reason = p.meta().skipReason;
    if (reason !== undefined) return reason;
    if (p.type === 'module') return undefined;
  }
}
