/** The node project's setup file: a failed test that had browser contexts or web stacks open tells their state. */
import { beforeEach } from 'vitest';
import { troubleReport } from './browser-trouble.js';

beforeEach(({ onTestFailed }) => {
  onTestFailed(async () => {
    const lines = await troubleReport();
    if (lines.length) console.error(['what the browser and the stacks showed when the test failed:', ...lines].join('\n'));
  });
});
