// The published JSON schema (`lbbench schema`), generated from the zod schema so the two cannot
// drift. `io: 'input'` describes what a user writes ("5s", omitted keys with defaults), not the
// parsed values.
import { z } from 'zod';
import { ScenarioSpec } from './schema.ts';

export function scenarioJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ScenarioSpec, { io: 'input' }),
    title: 'lbbench scenario',
  };
}
