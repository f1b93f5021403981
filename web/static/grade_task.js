// The grade-by-task page (web/templates/tutor_grade_task.html). No inline scripts: the CSP is script-src 'self';
// the queue comes as a JSON data block (#queue-data) and is shown with textContent only.
// - Digit keys 1..9 (0: the tenth) tick or untick rubric items; the total follows (clamped to 0..max; a task
//   scored by deductions starts at its maximum).
// - Enter saves (POST JSON with the CSRF header) and goes to the next hand-in still to grade; nothing
//   ticked saves 0 points. Left/Right arrows go back and forth without saving (unsaved ticks are kept).
// - A / C go to the adjustment / the comment; Ctrl+Enter saves from there, Esc returns to the keys.
// - A stale save (409) shows who changed the grading, to what and when; the tutor's ticks stay, so Enter
//   saves them over theirs (now on the current version) and Right keeps theirs.
(function () {
  "use strict";
  var dataEl = document.getElementById("queue-data");
  if (!dataEl) { return; }
  var data = JSON.parse(dataEl.textContent);
  var entries = data.entries;
  // URLs from attributes, which a service prefix (web/prefix.py) rewrites; the JSON's are site-absolute
  var urls = document.getElementById("queue-urls");
  var saveUrl = urls.getAttribute("data-save-url"), root = urls.getAttribute("data-root-url");
  entries.forEach(function (e) {
    e.pdf = root + e.pdf.replace(/^\//, "");
    e.images = (e.images || []).map(function (u) { return root + u.replace(/^\//, ""); });
  });
  var wholePdf = false;  // p: the whole PDF instead of the task's page images
  if (!entries.length) { return; }
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#rubric input.tick"));
  var adjustment = document.getElementById("adjustment"), comment = document.getElementById("comment");
  var statusBox = document.getElementById("status"), conflictBox = document.getElementById("conflict");
  var drafts = {};  // student -> {ticks, adjustment, comment}: what the tutor changed and has not saved
  var at = 0, busy = false;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function say(text, kind) { statusBox.textContent = text || ""; statusBox.className = "status" + (kind ? " " + kind : ""); }
  function num(text) {
    var t = String(text || "").trim().replace(",", ".");
    if (t.indexOf("/") >= 0) { var p = t.split("/"); return Number(p[0]) / Number(p[1]); }
    return t === "" ? 0 : Number(t);
  }
  function shown(n) { return String(Math.round(n * 1000) / 1000); }

  function current() {
    var e = entries[at], d = drafts[e.student];
    if (d) { return d; }
    return { ticks: e.cell.ticks || [], adjustment: e.cell.adjustment || "", comment: e.cell.comment || "" };
  }
  function draft() {
    var e = entries[at];
    var ticks = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var held = (e.cell.ticks || []).slice().sort().join(" ");
    if (e.cell.points !== null && ticks.slice().sort().join(" ") === held && num(adjustment.value) === num(e.cell.adjustment)
        && comment.value === (e.cell.comment || "")) {
      delete drafts[e.student];
    } else {
      drafts[e.student] = { ticks: ticks, adjustment: adjustment.value, comment: comment.value };
    }
  }
  function total() {
    var sum = boxes.reduce(function (s, b) { return s + (b.checked ? num(b.getAttribute("data-points")) : 0); }, 0);
    var t = Math.min(Math.max(num(data.start || "0") + sum + num(adjustment.value), 0), num(data.max));
    document.getElementById("total").textContent = isNaN(t) ? "?" : shown(t);
    boxes.forEach(function (b) { b.closest("label").classList.toggle("on", b.checked); });
  }
  function left() {
    var n = entries.filter(function (e) { return !e.graded; }).length;
    document.getElementById("left-count").textContent = String(n);
    return n;
  }

  function show(i) {
    var active = document.activeElement;
    if (active === adjustment || active === comment) { active.blur(); }  // the keys act on the next hand-in
    at = (i + entries.length) % entries.length;
    var e = entries[at], s = current();
    document.getElementById("who").textContent = e.shown + (e.team ? " · team " + e.team : "");
    document.getElementById("position").textContent = (at + 1) + " / " + entries.length;
    var state = e.cell.points === null ? (e.cell.team_points !== null ? "graded for a teammate: " + e.cell.team_points
      : "not graded yet") : "graded: " + e.cell.points + " by " + (e.cell.entered_by_name || e.cell.entered_by || "?");
    document.getElementById("state").textContent = state + (drafts[e.student] ? " · unsaved changes" : "");
    var flag = document.getElementById("regrade-flag");  // an open regrade request on this task
    if (flag) {
      flag.hidden = !e.regrade;
      flag.setAttribute("href", e.regrade ? "/regrades/" + e.regrade : "#");
    }
    boxes.forEach(function (b) { b.checked = s.ticks.indexOf(b.value) >= 0; });
    adjustment.value = s.adjustment;
    comment.value = s.comment;
    showPages(e);
    document.getElementById("pdf-link").setAttribute("href", e.pdf);
    document.getElementById("pages-note").textContent = e.pages ? "pages " + e.pages.join(", ") : "all pages";
    conflictBox.hidden = true;
    total();
  }

  function showPages(e) {
    // the task's pages as images (rendered at hand-in, no PDF viewer needed); the PDF where none are rendered
    var frame = document.getElementById("pdf"), box = document.getElementById("page-images");
    var images = wholePdf ? [] : e.images;
    box.hidden = !images.length;
    frame.hidden = !!images.length;
    if (images.length) {
      if (box.getAttribute("data-for") !== e.student) {
        while (box.firstChild) { box.removeChild(box.firstChild); }
        images.forEach(function (src, k) {
          var img = document.createElement("img");
          img.setAttribute("src", src);
          img.setAttribute("alt", "page " + (e.pages ? e.pages[k] : k + 1));
          img.setAttribute("loading", "lazy");
          box.appendChild(img);
        });
        box.setAttribute("data-for", e.student);
        box.scrollTop = 0;
      }
      return;
    }
    box.removeAttribute("data-for");
    var url = e.pdf + "#navpanes=0&view=FitH" + (e.pages ? "&page=" + e.pages[0] : "");  // the viewer: no side panel
    if (frame.getAttribute("src") !== url) { frame.setAttribute("src", url); }
  }

  function nextToGrade() {
    for (var k = 1; k <= entries.length; k++) {
      var j = (at + k) % entries.length;
      if (!entries[j].graded) { return j; }
    }
    return at + 1;
  }

  function save() {
    if (busy) { return; }
    draft();
    var e = entries[at], d = drafts[e.student];
    var body = { student: e.student, ticks: d.ticks, adjustment: d.adjustment, version: e.cell.version,
                 comment_version: e.cell.comment_version };
    if (d.comment !== (e.cell.comment || "")) { body.comment = d.comment; }
    busy = true;
    say("Saving…");
    fetch(saveUrl, { method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "X-Requested-With": "fetch" } })
      .then(function (resp) {
        return resp.json().catch(function () { return { error: "The server answered " + resp.status + "." }; })
          .then(function (r) { return { status: resp.status, data: r }; });
      })
      .then(function (r) {
        busy = false;
        if (r.status === 200) {
          e.cell = r.data.cell;
          e.graded = true;
          delete drafts[e.student];
          var n = left();
          say("Saved " + e.shown + ": " + e.cell.points + " points." + (n ? " " + n + " still to grade." : " All graded."), "ok");
          show(n ? nextToGrade() : at + 1);
        } else if (r.status === 409 && r.data.cell) {
          e.cell = r.data.cell;  // theirs, with its version: Enter now saves mine over it
          e.graded = e.cell.points !== null;
          left();
          document.getElementById("conflict-text").textContent = r.data.error;
          conflictBox.hidden = false;
          say("Not saved: changed meanwhile.", "error");
        } else {
          say("Not saved: " + (r.data.error || r.data.detail || ("the server answered " + r.status)), "error");
        }
      }, function () {
        busy = false;
        say("Not saved: the server cannot be reached. Your ticks are kept; press Enter to try again.", "error");
      });
  }

  function move(step) { draft(); show(at + step); }

  document.addEventListener("keydown", function (ev) {
    var inField = ev.target === adjustment || ev.target === comment;
    if (inField) {
      if (ev.key === "Escape") { ev.target.blur(); draft(); total(); }
      else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey || ev.target === adjustment)) { ev.preventDefault(); save(); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (/^[0-9]$/.test(ev.key)) {
      var box = boxes[ev.key === "0" ? 9 : Number(ev.key) - 1];
      if (box) { box.checked = !box.checked; draft(); total(); ev.preventDefault(); }
    } else if (ev.key === "Enter" && (ev.target === document.body || ev.target.classList.contains("tick"))) {
      ev.preventDefault(); save();
    } else if (ev.key === "ArrowRight") { ev.preventDefault(); move(1); }
    else if (ev.key === "ArrowLeft") { ev.preventDefault(); move(-1); }
    else if (ev.key === "a" || ev.key === "A") { ev.preventDefault(); adjustment.focus(); adjustment.select(); }
    else if (ev.key === "c" || ev.key === "C") { ev.preventDefault(); comment.focus(); }
    else if (ev.key === "o" || ev.key === "O") { window.open(entries[at].pdf, "_blank", "noopener"); }
    else if (ev.key === "p" || ev.key === "P") { wholePdf = !wholePdf; showPages(entries[at]); }
  });
  boxes.forEach(function (b) { b.addEventListener("change", function () { draft(); total(); }); });
  adjustment.addEventListener("input", function () { draft(); total(); });
  comment.addEventListener("input", draft);
  document.getElementById("save").addEventListener("click", save);
  document.getElementById("prev").addEventListener("click", function () { move(-1); });
  document.getElementById("next").addEventListener("click", function () { move(1); });
  var first = entries.findIndex(function (e) { return !e.graded; });
  show(first < 0 ? 0 : first);
})();
