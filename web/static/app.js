// The application's small script (no inline scripts anywhere: the CSP is script-src 'self').
// - window.mlph.csrf(): the page's CSRF token; mlph.post(url, data) sends it as X-CSRF-Token.
// - An element with data-poll="URL" is replaced by the HTML fragment at URL every 2 s while the
//   fragment it gets back still carries data-poll (a hand-in that is being graded).
// - A form with data-confirm="text" asks before it is sent.
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function post(url, data, options) {
    var body = data instanceof FormData || data instanceof URLSearchParams ? data : new URLSearchParams(data || {});
    return fetch(url, Object.assign({ method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch" } }, options || {}));
  }
  window.mlph = { csrf: csrf, post: post };

  function poll(el) {
    var url = el.getAttribute("data-poll");
    if (!url) { return; }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch", "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var box = document.createElement("div");
          box.innerHTML = html;  // our own server-rendered, escaped fragment
          var fresh = box.firstElementChild;
          if (!fresh) { return; }
          el.replaceWith(fresh);
          if (fresh.hasAttribute("data-poll")) { poll(fresh); }
        })
        .catch(function () { poll(el); });
    }, 2000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  });
})();
