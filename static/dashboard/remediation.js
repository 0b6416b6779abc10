/* Medic remediation pages: the YAML editor (line numbers, validation as you type) and the
   execution page's live refresh. Both pages work without this file; builder.js adds the
   form view of the same document. */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function editor(form) {
    var source = form.querySelector("[data-source]");
    var gutter = form.querySelector("[data-gutter]");
    var box = form.querySelector("[data-problems]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var url = form.getAttribute("data-validate-url");
    var bad = {};
    var timer = null;
    var seq = 0;

    function numbers() {
      var count = source.value.split("\n").length;
      gutter.textContent = "";
      for (var i = 1; i <= count; i++) {
        gutter.appendChild(text("span", String(i), bad[i] ? "bad" : ""));
        gutter.appendChild(document.createTextNode("\n"));
      }
      gutter.scrollTop = source.scrollTop;
    }

    function jump(line) {
      form.dispatchEvent(new CustomEvent("medic:jump"));  // the form builder shows the YAML
      var lines = source.value.split("\n");
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      source.focus();
      source.setSelectionRange(start, start + (lines[line - 1] || "").length);
    }

    function show(result) {
      bad = {};
      box.textContent = "";
      if (result.valid) {
        box.appendChild(text("p", "Valid.", "ok-summary"));
      } else {
        var list = text("ul", "", "error-summary");
        result.problems.forEach(function (p) {
          var item = document.createElement("li");
          if (p.line) {
            bad[p.line] = true;
            item.setAttribute("data-line", p.line);
            var link = text("button", "line " + p.line, "linkbtn");
            link.type = "button";
            link.addEventListener("click", function () { jump(p.line); });
            item.appendChild(link);
            item.appendChild(document.createTextNode(" · "));
          }
          item.appendChild(text("code", p.path));
          item.appendChild(document.createTextNode(": " + p.message));
          list.appendChild(item);
        });
        box.appendChild(list);
      }
      numbers();
    }

    function validate() {
      var mine = ++seq;
      var body = new URLSearchParams();
      body.set("source", source.value);
      fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": token },
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (result) { if (result && mine === seq) show(result); })
        .catch(function () {});
    }

    source.addEventListener("input", function () {
      numbers();
      clearTimeout(timer);
      timer = setTimeout(validate, 400);
    });
    source.addEventListener("scroll", function () { gutter.scrollTop = source.scrollTop; });
    // Tab indents two spaces; Escape then Tab leaves the editor (keyboard users are not trapped).
    var escaped = false;
    source.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { escaped = true; return; }
      if (event.key === "Tab" && !event.shiftKey && !escaped) {
        event.preventDefault();
        var at = source.selectionStart;
        source.setRangeText("  ", at, source.selectionEnd, "end");
        source.dispatchEvent(new Event("input"));
      }
      escaped = false;
    });
    form.medicShow = show;  // the form builder reports the same problems the same way
    box.querySelectorAll("li[data-line]").forEach(function (item) {
      var line = parseInt(item.getAttribute("data-line"), 10);
      if (line) bad[line] = true;
    });
    numbers();
    // Text typed or pasted before this script ran (a slow page) raised no event we heard:
    // check it now, so its problems show without another keystroke.
    if (source.value !== source.defaultValue) validate();
  }

  function live(holder) {
    var url = holder.getAttribute("data-live-url");
    function poll() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          holder.replaceChildren.apply(holder, Array.prototype.slice.call(doc.body.childNodes));
          var state = holder.querySelector("[data-testid=state]");
          var open = state && ["running", "waiting", "pending_approval"].indexOf(state.textContent.trim()) >= 0;
          if (open) setTimeout(poll, 2000);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  ready(function () {
    document.querySelectorAll("form[data-yaml-editor]").forEach(editor);
    document.querySelectorAll("[data-live-url]").forEach(live);
  });
})();
