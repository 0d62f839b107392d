#!/usr/bin/env node
// Runs the TypeScript sources through tsx so a checkout works with no build step.
import { register } from 'tsx/esm/api';
register();
await import("../harness/main.ts");
