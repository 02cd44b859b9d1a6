// Charts: every <figure class="llmplan-chart"> holds a static SVG and its Vega-Lite spec as JSON;
// this replaces the SVG with the live view of the same spec (hover for values, drag or scroll to
// zoom, export as SVG/PNG). Vega is bundled (vendor/vega.js); `ast: true` uses its interpreter,
// so no code is generated at run time and the page's Content-Security-Policy holds.
"use strict";
(function () {
  const OPTIONS = { renderer: "svg", ast: true,
                    actions: { export: true, source: false, compiled: false, editor: false } };
  async function live(fig) {
    const holder = fig.querySelector(".chart-spec");
    const view = fig.querySelector(".chart-view");
    if (!holder || !view || typeof vegaEmbed !== "function") return;
    const spec = JSON.parse(holder.textContent);
    const box = document.createElement("div");
    try {
      await vegaEmbed(box, spec, OPTIONS);
      view.replaceChildren(box);
      fig.dataset.live = "1";
    } catch (e) {
      fig.dataset.live = "0";  // the static SVG stays
      console.warn("chart not made live:", e);
    }
  }
  function all(root) {
    return Promise.all([...(root || document).querySelectorAll("figure.llmplan-chart:not([data-live])")].map(live));
  }
  window.llmplanCharts = all;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => all());
  else all();
})();
