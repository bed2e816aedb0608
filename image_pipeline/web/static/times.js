// Show epoch-second timestamps in the reader's local time.
"use strict";
function formatEpoch(seconds) {
  const n = Number(seconds);
  if (!isFinite(n) || n <= 0) { return "-"; }
  return new Date(n * 1000).toLocaleString();
}
function localizeTimes(root) {
  for (const el of (root || document).querySelectorAll("time.epoch")) {
    el.textContent = formatEpoch(el.dataset.epoch);
    el.title = el.dataset.epoch;
  }
}
localizeTimes(document);
