// Live counters in the header and keyboard navigation of the queue. No inline script anywhere:
// the pages' Content-Security-Policy allows scripts from this origin only.
"use strict";

function refreshCounters() {
  const box = document.getElementById("counters");
  if (!box) return;
  fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((c) => {
      for (const el of box.querySelectorAll("[data-key]")) {
        const key = el.dataset.key;
        const value = key in c ? c[key] : c.by_urgency[key];
        el.textContent = String(value);
      }
    })
    .catch(() => {});
}

function queueKeys() {
  const rows = Array.from(document.querySelectorAll("#queue tr.row"));
  if (!rows.length) return;
  let at = -1;
  const select = (i) => {
    if (at >= 0) rows[at].classList.remove("selected");
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows[at].classList.add("selected");
    rows[at].scrollIntoView({ block: "nearest" });
  };
  for (const row of rows) {
    row.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      window.location.href = row.dataset.href;
    });
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea")) return;
    if (e.key === "j") select(at + 1);
    else if (e.key === "k") select(at - 1);
    else if (e.key === "Enter" && at >= 0) window.location.href = rows[at].dataset.href;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  refreshCounters();
  setInterval(refreshCounters, 5000);
  queueKeys();
});
