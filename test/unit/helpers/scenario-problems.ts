import assert from 'node:assert/strict';
import { ConfigError } from '../../../harness/errors.ts';
import { parseScenarioText } from '../../../harness/scenario/load.ts';

/** The problem lines the loader gives for scenario text ("s.yaml:L:C: path: message"); [] when it is accepted. */
export async function scenarioProblems(text: string): Promise<string[]> {
  try {
    await parseScenarioText(text, 's.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  return [];
}

export const yaml = (...lines: string[]) => lines.join('\n') + '\n';
