// Keeps the dashboard current: polls /api/dashboard and redraws counters and the event list.
// Every value from a record is put in the page with textContent, never as HTML.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const list = document.getElementById("events");
  const cameraSelect = document.getElementById("filter-camera");
  const typeSelect = document.getElementById("filter-type");

  function eventUrl(eventId) {
    return "/events/" + encodeURIComponent(eventId);
  }

  function renderItem(item) {
    const li = el("li", "event");
    li.dataset.eventId = item.event_id;
    const thumbLink = el("a");
    thumbLink.href = eventUrl(item.event_id);
    if (item.thumbnail) {
      const img = el("img", "thumb");
      img.src = dataUrl(item.thumbnail);
      img.alt = "";
      thumbLink.appendChild(img);
    } else {
      thumbLink.appendChild(el("div", "thumb missing", "no image"));
    }
    li.appendChild(thumbLink);
    const info = el("div", "info");
    const link = el("a", "event-link", item.event_id);
    link.href = eventUrl(item.event_id);
    info.appendChild(link);
    info.appendChild(el("span", "badge type-" + String(item.event_type).replace(/[^a-z_]/g, ""), item.event_type));
    info.appendChild(el("span", null, "camera " + item.camera_id));
    info.appendChild(el("time", "epoch", formatEpoch(item.time)));
    info.appendChild(el("span", null, "score " + Number(item.score).toFixed(2) + " \u00b7 " + item.status));
    if (item.alert_id) {
      info.appendChild(el("span", "alert-line", "alert " + item.alert_id + ": " + (item.alert_summary || "")));
    }
    li.appendChild(info);
    return li;
  }

  function setOptions(select, values) {
    const current = select.value;
    const have = new Set(Array.from(select.options).map((o) => o.value));
    for (const value of values) {
      if (!have.has(value)) { select.appendChild(el("option", null, value)).value = value; }
    }
    select.value = current;
  }

  function renderCounters(c) {
    const show = (v) => (v === null || v === undefined ? "n/a" : String(v));
    document.getElementById("count-images").textContent = show(c.images);
    document.getElementById("count-events").textContent = show(c.events);
    document.getElementById("count-alerts").textContent = show(c.alerts);
    document.getElementById("count-dead").textContent = show(c.dead_letters);
    const byType = document.getElementById("count-by-type");
    byType.replaceChildren(...Object.entries(c.events_by_type).map(([k, n]) => el("span", null, k + ": " + n)));
  }

  function renderCameras(cameras) {
    const section = document.getElementById("cameras");
    section.hidden = cameras.length === 0;
    document.getElementById("camera-list").replaceChildren(...cameras.map((cam) => {
      const li = el("li", "camera state-" + String(cam.state).replace(/[^a-z]/g, ""));
      li.dataset.cameraId = cam.camera_id;
      li.appendChild(el("strong", null, cam.camera_id));
      li.appendChild(el("span", "badge", cam.state));
      const last = cam.last_frame_at ? formatEpoch(cam.last_frame_at) : "none";
      li.appendChild(el("span", null, " since " + formatEpoch(cam.since) + "; last frame " + last
        + "; kept " + cam.frames_kept + ", dropped " + cam.frames_dropped + ", reconnects " + cam.reconnects
        + (cam.reason ? "; " + cam.reason : "")));
      return li;
    }));
  }

  function query() {
    const params = new URLSearchParams();
    if (cameraSelect.value) { params.set("camera", cameraSelect.value); }
    if (typeSelect.value) { params.set("type", typeSelect.value); }
    return params.toString();
  }

  async function refresh() {
    try {
      const qs = query();
      const response = await fetch("/api/dashboard" + (qs ? "?" + qs : ""), { cache: "no-store" });
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      const state = await response.json();
      renderCounters(state.counters);
      renderCameras(state.cameras || []);
      setOptions(cameraSelect, state.counters.cameras);
      const kafkaError = document.getElementById("kafka-error");
      kafkaError.hidden = !state.kafka_error;
      kafkaError.textContent = state.kafka_error || "";
      const items = state.items.map(renderItem);
      if (items.length === 0) { items.push(el("li", "empty", "No events yet.")); }
      list.replaceChildren(...items);
      document.getElementById("updated").textContent = new Date().toLocaleTimeString();
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (err) {
      document.getElementById("updated").textContent = "failed (" + err.message + ")";
    }
  }

  function onFilterChange() {
    const qs = query();
    history.replaceState(null, "", qs ? "?" + qs : location.pathname);
    refresh();
  }
  cameraSelect.addEventListener("change", onFilterChange);
  typeSelect.addEventListener("change", onFilterChange);

  const form = document.getElementById("upload-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("upload-result");
    result.textContent = "uploading\u2026";
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
      const body = await response.json();
      result.textContent = response.ok
        ? "stored " + body.image_id + " (" + response.status + ")"
        : "refused (" + response.status + "): " + body.error;
      result.dataset.status = String(response.status);
    } catch (err) {
      result.textContent = "upload failed: " + err.message;
    }
    refresh();
  });

  setInterval(refresh, REFRESH_MS);
})();
