// vega-lite spec → SVG string, headless: the 'none' renderer builds the scenegraph without a
// canvas or browser, and text widths are estimated (good enough for axis layout).
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export async function renderSvg(vlSpec: TopLevelSpec): Promise<string> {
  const vgSpec = compile(vlSpec).spec;
  const view = new View(parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    // Views hold timers and listeners; a long `report` over many runs would otherwise leak them.
    view.finalize();
  }
}
