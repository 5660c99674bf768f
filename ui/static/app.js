// caddy-multitenant admin: the only script. Every page works without it;
// it only enhances: live status and logs over server-sent events, and a
// confirmation before destructive buttons.
"use strict";

document.addEventListener("submit", (ev) => {
  const button = ev.submitter || ev.target.querySelector("[data-confirm]");
  const text = button && button.dataset.confirm;
  if (text && !window.confirm(text)) ev.preventDefault();
});

// <element data-live="URL">: the server sends events "html" whose data
// replaces the element's content (status panels), until the page goes.
for (const el of document.querySelectorAll("[data-live]")) {
  const es = new EventSource(el.dataset.live);
  es.addEventListener("html", (ev) => { el.innerHTML = ev.data; });
  es.addEventListener("end", () => es.close());
}

// <pre data-follow="URL">: each event "line" appends a line (logs, build
// output), scrolled to the end while the reader is at the end.
for (const el of document.querySelectorAll("[data-follow]")) {
  const es = new EventSource(el.dataset.follow);
  const status = document.getElementById(el.dataset.status || "");
  if (status) status.textContent = "following live";
  es.addEventListener("line", (ev) => {
    const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
    el.append(ev.data + "\n");
    if (atEnd) el.scrollTop = el.scrollHeight;
  });
  es.addEventListener("end", () => { es.close(); if (status) status.textContent = "ended"; });
  es.onerror = () => { if (status) status.textContent = "reconnecting…"; };
}
