// Small DOM helpers the live pages share. Values from records only ever go in through textContent.
"use strict";
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) { node.className = cls; }
  if (text !== undefined && text !== null) { node.textContent = String(text); }
  return node;
}
function dataUrl(relative) {
  return "/data/" + relative.split("/").map(encodeURIComponent).join("/");
}
