// The tutors' grid (web/templates/tutor_grid.html). No inline scripts anywhere: the CSP is script-src 'self'.
// - Arrow keys, Tab and Enter move between the point cells; Esc undoes the typing in a cell.
// - "2,5" and "2.5" are the same; a value above the task's maximum or negative is refused on the spot
//   with the reason (the server checks again: it is the authority).
// - Each cell saves itself when it is left (POST JSON with the CSRF header); a page that is hidden or
//   closed saves what is pending with fetch(..., {keepalive: true}).
// - A stale save (409) shows who changed the cell, to what and when, with the choice to keep theirs
//   or to save one's own over it.
// - Selecting a row shows that student's PDF, notebook, rubric and comments in the side panel.
// - Ctrl+Enter (or Cmd+Enter) in a cell goes to that cell's rubric (or comment) in the side panel: Tab
//   and Space tick items there; Esc goes back to the cell.
(function () {
  "use strict";
  var table = document.getElementById("grid");
  if (!table) { return; }
  var saveUrl = table.getAttribute("data-save-url");
  var statusBox = document.getElementById("status");
  var conflictBox = document.getElementById("conflict");
  var conflictText = document.getElementById("conflict-text");
  var emptyCount = document.getElementById("empty-count");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var pending = [];  // saves that failed on the network: retried
  var conflictFor = null;  // {el, theirs}

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function say(text, kind) {
    statusBox.textContent = text || "";
    statusBox.className = "status" + (kind ? " " + kind : "");
  }

  // --- numbers ---------------------------------------------------------------------------------
  function toNumber(text) {
    if (text.indexOf("/") >= 0) { var p = text.split("/"); return Number(p[0]) / Number(p[1]); }
    return Number(text);
  }

  // {empty: true} | {value: Number, text: "2.5"} | {error: "reason"}
  function parse(raw, max) {
    var t = raw.trim().replace(",", ".");
    if (t === "") { return { empty: true }; }
    if (/^-/.test(t) && /^-\d*\.?\d+$/.test(t)) {
      return { error: raw.trim() + " is outside 0.." + max + ": points cannot be negative" };
    }
    if (!/^\+?(\d+\.?\d*|\.\d+)$/.test(t)) {
      return { error: "\u201c" + raw.trim() + "\u201d is not a number (type points such as 2,5 or 2.5)" };
    }
    var v = Number(t);
    if (v > toNumber(max) + 1e-9) {
      return { error: raw.trim() + " is outside 0.." + max + ": above the task's maximum of " + max };
    }
    return { value: v, text: t.replace(/^\+/, "") };
  }

  function same(a, b) {
    var x = a.trim().replace(",", "."), y = b.trim().replace(",", ".");
    if (x === "" || y === "") { return x === y; }
    return Number(x) === Number(y) && !isNaN(Number(x));
  }

  // --- cells -----------------------------------------------------------------------------------
  function cellAt(r, c) {
    var row = rows[r];
    return row ? row.querySelectorAll("input.pts")[c] || null : null;
  }
  function pos(el) { return [Number(el.getAttribute("data-row")), Number(el.getAttribute("data-col"))]; }
  function ncols() { return Number(table.getAttribute("data-tasks")); }
  function find(student, task) {
    return table.querySelector('input.pts[data-student="' + CSS.escape(student) + '"][data-task="' + CSS.escape(task) + '"]');
  }

  function validate(el) {
    var r = parse(el.value, el.getAttribute("data-max"));
    el.classList.toggle("invalid", !!r.error);
    el.setAttribute("aria-invalid", r.error ? "true" : "false");
    if (r.error) {
      el.title = r.error;
      say(el.getAttribute("aria-label") + ": " + r.error + ". Not saved.", "error");
    } else {
      el.removeAttribute("title");
      if (statusBox.classList.contains("error")) { say(""); }
    }
    return r;
  }

  function dirty(el) { return !same(el.value, el.getAttribute("data-saved") || ""); }

  function updateCounts() {
    var empty = 0;
    table.querySelectorAll("input.pts").forEach(function (el) {
      if ((el.getAttribute("data-saved") || "") === "" && !el.hasAttribute("data-team")) { empty += 1; }
    });
    if (emptyCount) { emptyCount.textContent = String(empty); }
    rows.forEach(function (row) {
      var sum = 0, any = false;
      row.querySelectorAll("input.pts").forEach(function (el) {
        var s = el.getAttribute("data-saved") || el.getAttribute("placeholder") || "";
        if (s !== "") { sum += toNumber(s); any = true; }
      });
      var cell = row.querySelector("td.sum");
      if (cell) { cell.textContent = any ? String(Math.round(sum * 1000) / 1000) : "\u2013"; }
    });
  }

  // --- saving ----------------------------------------------------------------------------------
  function send(body, keepalive) {
    return fetch(saveUrl, {
      method: "POST", credentials: "same-origin", keepalive: !!keepalive, body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "X-Requested-With": "fetch",
                 "Accept": "application/json" }
    });
  }

  function applyCell(cell) {
    var el = find(cell.student, cell.task);
    if (el) {
      el.setAttribute("data-version", String(cell.version));
      el.setAttribute("data-saved", cell.points === null ? "" : cell.points);
      if (document.activeElement !== el || !dirty(el)) { el.value = cell.points === null ? "" : cell.points; }
      el.classList.remove("invalid", "conflict", "failed");
    }
    var panel = document.querySelector('.student-panel[data-student="' + CSS.escape(cell.student) + '"]');
    if (!panel) { return el; }
    panel.querySelectorAll('input.tick[data-task="' + CSS.escape(cell.task) + '"]').forEach(function (box) {
      box.checked = !!cell.ticks && cell.ticks.indexOf(box.value) >= 0;
    });
    var note = panel.querySelector('textarea.comment[data-task="' + CSS.escape(cell.task) + '"]');
    if (note) {
      note.setAttribute("data-version", String(cell.comment_version));
      if (document.activeElement !== note) { note.value = cell.comment; }
      note.setAttribute("data-saved", cell.comment);
      note.classList.remove("conflict", "failed");
    }
    return el;
  }

  function showConflict(el, data) {
    conflictFor = { el: el, theirs: data.cell };
    conflictText.textContent = data.error;
    conflictBox.hidden = false;
    el.classList.add("conflict");
    say("Not saved: " + data.error, "error");
  }

  function flash(el) {
    el.classList.add("saved");
    window.setTimeout(function () { el.classList.remove("saved"); }, 900);
  }

  // body: the fields to save; el: the element that shows the outcome
  function save(el, body, keepalive) {
    if (el._busy) { el._again = true; return Promise.resolve(); }
    el._busy = true;
    el.classList.add("saving");
    return send(body, keepalive).then(function (resp) {
      return resp.json().catch(function () { return { error: "The server answered " + resp.status + "." }; })
        .then(function (data) { return { status: resp.status, data: data }; });
    }).then(function (r) {
      el.classList.remove("saving");
      if (r.status === 200) {
        applyCell(r.data.cell);
        flash(el);
        var active = document.activeElement;
        if (active && active.classList && active.classList.contains("pts") && active.classList.contains("invalid")) {
          validate(active);  // the cell being typed in is refused: its reason stays on show
        } else {
          say("Saved " + (el.getAttribute("aria-label") || "the comment") + ".", "ok");
        }
      } else if (r.status === 409 && r.data.cell) {
        showConflict(el, r.data);
      } else {
        el.classList.add("invalid");
        say("Not saved: " + (r.data.error || ("the server answered " + r.status)), "error");
      }
      updateCounts();
    }, function () {
      el.classList.remove("saving");
      el.classList.add("failed");
      if (pending.indexOf(el) < 0) { pending.push(el); }
      say("Not saved yet: the server cannot be reached. It is retried every few seconds; keep this tab open.", "error");
    }).then(function () {
      el._busy = false;
      if (el._again) { el._again = false; commit(el); }
    });
  }

  function commit(el, keepalive) {
    if (el.classList.contains("pts")) {
      if (!dirty(el) && !el.classList.contains("failed")) { return; }
      var r = validate(el);
      if (r.error) { return; }
      save(el, { student: el.getAttribute("data-student"), task: el.getAttribute("data-task"),
                 value: r.empty ? "" : r.text, version: Number(el.getAttribute("data-version")) }, keepalive);
    } else if (el.classList.contains("comment")) {
      if (el.value === (el.getAttribute("data-saved") || "") && !el.classList.contains("failed")) { return; }
      save(el, { student: el.getAttribute("data-student"), task: el.getAttribute("data-task"), comment: el.value,
                 comment_version: Number(el.getAttribute("data-version")) }, keepalive);
    }
  }

  function tick(box) {
    var student = box.getAttribute("data-student"), task = box.getAttribute("data-task");
    var el = find(student, task);
    var ticks = [];
    box.closest("fieldset").querySelectorAll("input.tick").forEach(function (b) { if (b.checked) { ticks.push(b.value); } });
    save(el, { student: student, task: task, ticks: ticks, version: Number(el.getAttribute("data-version")) });
  }

  // --- conflicts -------------------------------------------------------------------------------
  document.getElementById("conflict-theirs").addEventListener("click", function () {
    if (!conflictFor) { return; }
    var el = conflictFor.el;
    el.value = "";
    applyCell(conflictFor.theirs);
    if (el.classList.contains("comment")) { el.value = conflictFor.theirs.comment; }
    else { el.value = conflictFor.theirs.points === null ? "" : conflictFor.theirs.points; }
    conflictBox.hidden = true;
    conflictFor = null;
    say("");
    updateCounts();
  });
  document.getElementById("conflict-mine").addEventListener("click", function () {
    if (!conflictFor) { return; }
    var el = conflictFor.el, theirs = conflictFor.theirs;
    if (el.classList.contains("comment")) {
      el.setAttribute("data-version", String(theirs.comment_version));
      el.setAttribute("data-saved", theirs.comment);
    } else {
      el.setAttribute("data-version", String(theirs.version));
      el.setAttribute("data-saved", theirs.points === null ? "" : theirs.points);
    }
    conflictBox.hidden = true;
    conflictFor = null;
    el.classList.remove("conflict");
    commit(el);
  });

  // --- selection and keys ----------------------------------------------------------------------
  function select(student) {
    rows.forEach(function (row) { row.classList.toggle("selected", row.getAttribute("data-student") === student); });
    document.querySelectorAll(".student-panel").forEach(function (p) {
      p.hidden = p.getAttribute("data-student") !== student;
    });
  }

  function go(el, dr, dc) {
    var p = pos(el), r = p[0] + dr, c = p[1] + dc;
    if (c < 0) { c = ncols() - 1; r -= 1; }
    if (c >= ncols()) { c = 0; r += 1; }
    if (dr !== 0 && dc === 0 && r >= rows.length) { r = 0; c += 1; }  // Enter at the bottom: next task's column
    var next = cellAt(r, c);
    if (next) { next.focus(); next.select(); }
  }

  table.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (!el.classList || !el.classList.contains("pts")) { return; }
    var atStart = el.selectionStart === 0 && el.selectionEnd === 0;
    var whole = el.selectionStart === 0 && el.selectionEnd === el.value.length;
    var atEnd = el.selectionStart === el.value.length;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { toPanel(el); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { go(el, -1, 0); ev.preventDefault(); }
    else if (ev.key === "ArrowDown") { go(el, 1, 0); ev.preventDefault(); }
    else if (ev.key === "Enter") { go(el, ev.shiftKey ? -1 : 1, 0); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft" && (atStart || whole)) { go(el, 0, -1); ev.preventDefault(); }
    else if (ev.key === "ArrowRight" && (atEnd || whole)) { go(el, 0, 1); ev.preventDefault(); }
    else if (ev.key === "Escape") {
      el.value = el.getAttribute("data-saved") || "";
      validate(el);
      el.select();
    }
  });
  function toPanel(el) {
    var student = el.getAttribute("data-student"), task = el.getAttribute("data-task");
    select(student);
    var box = document.querySelector('.student-panel[data-student="' + CSS.escape(student) + '"] ' +
                                     '.task-box[data-task="' + CSS.escape(task) + '"]');
    var target = box && (box.querySelector("input.tick") || box.querySelector("textarea.comment"));
    if (target) { target.focus(); target.scrollIntoView({ block: "nearest" }); }
  }

  document.getElementById("panel").addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (ev.key !== "Escape" || !el.classList || !(el.classList.contains("tick") || el.classList.contains("comment"))) { return; }
    var back = find(el.getAttribute("data-student"), el.getAttribute("data-task"));
    if (back) { ev.preventDefault(); back.focus(); back.select(); }
  });
  table.addEventListener("input", function (ev) {
    if (ev.target.classList.contains("pts")) { validate(ev.target); }
  });
  document.addEventListener("focusin", function (ev) {
    var el = ev.target;
    if (el.classList && el.classList.contains("pts")) { select(el.getAttribute("data-student")); el.select(); }
  });
  document.addEventListener("focusout", function (ev) {
    var el = ev.target;
    if (el.classList && (el.classList.contains("pts") || el.classList.contains("comment"))) { commit(el); }
  });
  document.addEventListener("change", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("tick")) { tick(ev.target); }
  });
  table.addEventListener("click", function (ev) {
    var pick = ev.target.closest && ev.target.closest("button.pick");
    if (pick) { select(pick.closest("tr").getAttribute("data-student")); }
  });

  // --- nothing lost --------------------------------------------------------------------------------
  function flushAll() {
    var el = document.activeElement;
    if (el && el.classList && (el.classList.contains("pts") || el.classList.contains("comment"))) { commit(el, true); }
    pending.splice(0).forEach(function (p) { commit(p, true); });
  }
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") { flushAll(); } });
  window.addEventListener("pagehide", flushAll);
  window.addEventListener("beforeunload", function (ev) {
    var unsaved = table.querySelector("input.pts.invalid, input.pts.failed, input.pts.conflict, input.pts.saving");
    if (unsaved) { ev.preventDefault(); ev.returnValue = ""; }
  });
  window.setInterval(function () { pending.splice(0).forEach(function (p) { commit(p); }); }, 5000);

  document.querySelectorAll("textarea.comment").forEach(function (t) { t.setAttribute("data-saved", t.value); });
  updateCounts();
  var first = table.querySelector("input.pts[data-saved='']:not([data-team])") || cellAt(0, 0);
  if (first) { first.focus(); first.select(); }
})();
