// The one table of load generators. Scenario `load.generator` names are keys of this table.
import { ConfigError } from '../errors.ts';
import type { LoadDriver } from './types.ts';
import type { LoadSpec } from '../scenario/schema.ts';
import { wrk } from './wrk.ts';
import { connect } from './connect.ts';
import { traffic } from './traffic.ts';
import { trafgen } from './trafgen.ts';
import { iperf3 } from './iperf3.ts';
import { moongen } from './moongen.ts';
import { mconnect } from './mconnect.ts';
import { ctraffic } from './ctraffic.ts';

// Each driver's metrics type differs; the table is read through the common LoadDriver interface.
export const loadDrivers: Record<LoadSpec['generator'], LoadDriver> = { wrk, connect, traffic, trafgen, iperf3, moongen, mconnect, ctraffic } as never;
export type LoadDriverName = keyof typeof loadDrivers;

export function getLoadDriver(name: string): LoadDriver {
  if (Object.hasOwn(loadDrivers, name)) return loadDrivers[name as LoadDriverName];
  const valid = Object.keys(loadDrivers).join(', ');
  throw new ConfigError(`unknown load generator "${name}" (valid: ${valid})`, [], `use one of: ${valid}`);
}
