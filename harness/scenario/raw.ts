// The raw (not yet validated) YAML data and the findings checks report on it: shared by the
// loader and the cross-field checks that live beside it.

export type Path = readonly PropertyKey[];

/** A problem not yet placed: what is wrong, and which node (or, for `key`, which key) to point at. */
export interface Finding {
  path: Path;
  message: string;
  at?: 'key';
}

/** The value at `path` in raw data, or undefined where the path leaves it. */
export function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** The list at `path`, or [] when there is none (a wrong type is the schema's finding, not ours). */
export function rawList(data: unknown, path: Path): unknown[] {
  const v = valueAt(data, path);
  return Array.isArray(v) ? v : [];
}
