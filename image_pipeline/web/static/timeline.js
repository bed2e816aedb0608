// Filters a camera's timeline by event type in place: marks and list rows of other types are hidden.
"use strict";
(function () {
  const select = document.getElementById("timeline-type");
  const count = document.getElementById("timeline-count");

  function apply() {
    const wanted = select.value;
    let shown = 0;
    for (const node of document.querySelectorAll("#timeline .mark, #timeline-list li")) {
      node.hidden = wanted !== "" && node.dataset.type !== wanted;
    }
    for (const row of document.querySelectorAll("#timeline-list li")) {
      if (!row.hidden) { shown += 1; }
    }
    count.textContent = shown + " event(s)";
    const params = new URLSearchParams(location.search);
    if (wanted) { params.set("type", wanted); } else { params.delete("type"); }
    const qs = params.toString();
    history.replaceState(null, "", qs ? "?" + qs : location.pathname);
  }

  select.addEventListener("change", apply);
})();
