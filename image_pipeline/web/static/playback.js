// Plays an event's episode in the viewer: the server draws each frame's boxes; this steps through
// the frames at capture pace (each frame's delay_ms), looping, with frames preloaded before they show.
"use strict";
(function () {
  const section = document.getElementById("playback");
  if (!section) { return; }
  const img = document.getElementById("playback-frame");
  const position = document.getElementById("playback-position");
  const toggle = document.getElementById("playback-toggle");
  const PRELOAD = 8;
  let frames = [];
  const loaded = [];
  let run = 0;  // bumped on pause, so a frame still loading from before never restarts a second loop
  let current = -1;
  let timer = null;

  // Frames are fetched a few ahead of the one showing, not all at once: a long episode would
  // otherwise ask the server to draw hundreds of frames the moment the page opens.
  function load(index) {
    if (!loaded[index]) { loaded[index] = new Image(); loaded[index].src = frames[index].url; }
    return loaded[index];
  }

  function preload(from) {
    for (let k = 0; k < PRELOAD && k < frames.length; k += 1) { load((from + k) % frames.length); }
  }

  function show(index) {
    current = index;
    const frame = frames[index];
    img.src = load(index).src;
    preload(index + 1);
    img.hidden = false;
    img.dataset.index = String(index);
    img.dataset.imageId = frame.image_id;
    position.textContent = "frame " + (index + 1) + " of " + frames.length + " \u00b7 " + frame.image_id
      + " \u00b7 " + frame.boxes.length + " box(es)";
    section.dataset.shown = String(Number(section.dataset.shown || 0) + 1);
  }

  function step() {
    const next = (current + 1) % frames.length;
    const wait = current < 0 ? 0 : frames[current].delay_ms;
    const mine = run;
    timer = setTimeout(() => {
      // A frame still loading is waited for, so the pace never skips a frame.
      const image = load(next);
      const ready = image.complete ? Promise.resolve() : image.decode().catch(() => undefined);
      ready.then(() => { if (mine === run) { show(next); step(); } });
    }, wait);
  }

  function pause() {
    clearTimeout(timer);
    timer = null;
    run += 1;
    toggle.textContent = "Play";
  }

  function play() {
    toggle.textContent = "Pause";
    step();
  }

  async function start() {
    try {
      const response = await fetch(section.dataset.api, { cache: "no-store" });
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      frames = (await response.json()).frames;
    } catch (err) {
      position.textContent = "not available (" + err.message + ")";
      return;
    }
    if (frames.length === 0) {
      position.textContent = "no stored frames for this episode";
      return;
    }
    preload(0);
    toggle.disabled = false;
    toggle.addEventListener("click", () => (timer === null ? play() : pause()));
    play();
  }

  start();
})();
