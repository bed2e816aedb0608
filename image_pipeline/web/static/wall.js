// Keeps the camera wall live: polls /api/cameras and swaps each tile's frame, status, last event and counts.
// A new frame is loaded off-screen first, so a tile never flashes an empty image.
// Every value from a record is put in the page with textContent, never as HTML.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const wall = document.getElementById("wall");

  function newTile(cameraId) {
    const tile = el("a", "tile");
    tile.dataset.cameraId = cameraId;
    tile.href = "/cameras/" + encodeURIComponent(cameraId);
    const img = el("img", "live");
    img.alt = "latest frame of " + cameraId;
    img.hidden = true;
    tile.appendChild(img);
    tile.appendChild(el("div", "live missing", "no frames yet"));
    const info = el("div", "tile-info");
    info.appendChild(el("strong", "camera-name", cameraId));
    info.appendChild(el("span", "badge status"));
    info.appendChild(el("span", "last-event"));
    info.appendChild(el("span", "today"));
    tile.appendChild(info);
    return tile;
  }

  function swapFrame(tile, frame) {
    const img = tile.querySelector("img.live");
    if (!frame || img.dataset.imageId === frame.image_id || tile.dataset.loading === frame.image_id) { return; }
    tile.dataset.loading = frame.image_id;
    const next = new Image();
    next.onload = () => {
      img.src = next.src;
      img.dataset.imageId = frame.image_id;
      img.hidden = false;
      const missing = tile.querySelector(".live.missing");
      if (missing) { missing.remove(); }
    };
    next.onerror = () => { delete tile.dataset.loading; };
    next.src = dataUrl(frame.url);
  }

  function renderTile(tile, data) {
    tile.className = "tile state-" + String(data.status.state).replace(/[^a-z]/g, "");
    swapFrame(tile, data.frame);
    tile.querySelector(".status").textContent = data.status.label;
    const last = data.last_event;
    tile.querySelector(".last-event").textContent = last
      ? "last: " + last.event_type + " " + formatEpoch(last.time) : "no events";
    tile.querySelector(".today").textContent =
      "today: " + data.today.events + " event(s), " + data.today.alerts + " alert(s)";
  }

  function render(cameras) {
    const existing = new Map(Array.from(wall.querySelectorAll(".tile")).map((t) => [t.dataset.cameraId, t]));
    const tiles = cameras.map((cam) => {
      const tile = existing.get(cam.camera_id) || newTile(cam.camera_id);
      renderTile(tile, cam);
      return tile;
    });
    if (tiles.length === 0) {
      tiles.push(el("p", "empty", "No cameras yet: start the receiver or upload an image."));
    }
    wall.replaceChildren(...tiles);
  }

  async function refresh() {
    try {
      const response = await fetch("/api/cameras", { cache: "no-store" });
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      render((await response.json()).cameras);
      document.getElementById("wall-updated").textContent = new Date().toLocaleTimeString();
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (err) {
      document.getElementById("wall-updated").textContent = "failed (" + err.message + ")";
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  setTimeout(refresh, REFRESH_MS);
})();
