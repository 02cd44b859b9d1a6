// Every page: say when catalog overrides are in force (they change every computation's facts).
"use strict";
(async () => {
  const el = document.getElementById("overrides-banner");
  if (!el) return;
  try {
    const r = await fetch("/api/health");
    const o = (await r.json()).overrides;
    if (!o || !o.count) return;
    const shadow = o.in_force.filter((x) => x.replaces_builtin).length;
    el.textContent = `${o.count} catalog override(s) in force` +
      (shadow ? `, ${shadow} replacing built-in entries` : "") + ": every result uses them. ";
    const a = document.createElement("a");
    a.href = "/catalog#overrides";
    a.textContent = "See them";
    el.append(a);
    el.hidden = false;
  } catch (e) { /* informative only */ }
})();
