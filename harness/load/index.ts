// The one table of load generators. Scenario `load.generator` names are keys of this table.
import { ConfigError } from '../errors.ts';
import type { LoadDriver } from './types.ts';
import { wrk } from './wrk.ts';
import { connect } from './connect.ts';
import { traffic } from './traffic.ts';

export const loadDrivers = { wrk, connect, traffic } as const satisfies Record<string, LoadDriver>;
export type LoadDriverName = keyof typeof loadDrivers;

export function getLoadDriver(name: string): LoadDriver {
  if (Object.hasOwn(loadDrivers, name)) return loadDrivers[name as LoadDriverName];
  const valid = Object.keys(loadDrivers).join(', ');
  throw new ConfigError(`unknown load generator "${name}" (valid: ${valid})`, [], `use one of: ${valid}`);
}
