// Progressive enhancement for published pages: every <figure data-spec> already shows a static
// SVG; where JavaScript runs, the chart is re-drawn by vega-embed from the same spec, with
// tooltips and SVG/PNG export. If that fails the static chart stays, and the failure is logged
// (the site's browser test treats any console error as a broken page).
/* global vegaEmbed */
'use strict';

function enhance(figure) {
  const holder = figure.querySelector('.chart');
  const data = document.getElementById(figure.dataset.spec);
  if (!holder || !data) return Promise.reject(new Error(`figure ${figure.id}: no chart or spec`));
  const spec = JSON.parse(data.textContent);
  // Tooltips show the data behind each mark; the static SVG has no room for them.
  spec.config = Object.assign({}, spec.config, { mark: Object.assign({ tooltip: true }, spec.config && spec.config.mark) });
  const still = holder.querySelector(':scope > svg');
  const live = document.createElement('div');
  live.className = 'live';
  // Attached before drawing: vega-embed puts its styles in the element's document.
  holder.appendChild(live);
  return vegaEmbed(live, spec, {
    renderer: 'svg',
    // The interpreter instead of compiled expressions: the page's policy forbids eval.
    ast: true,
    // Export only: "open in editor" and "view source" would leave the offline site.
    actions: { export: true, source: false, compiled: false, editor: false },
  }).then(
    () => {
      if (still) still.remove();
      figure.classList.add('interactive');
    },
    (err) => {
      live.remove();
      throw err;
    },
  );
}

document.addEventListener('DOMContentLoaded', () => {
  if (typeof vegaEmbed !== 'function') {
    console.error('lbbench: vega-embed did not load; charts stay static');
    return;
  }
  const figures = [...document.querySelectorAll('figure[data-spec]')];
  Promise.allSettled(figures.map(enhance)).then((outcomes) => {
    outcomes.forEach((o, i) => {
      if (o.status === 'rejected') console.error(`lbbench: ${figures[i].id} stays static:`, o.reason);
    });
    document.documentElement.dataset.charts = 'ready';
  });
});
