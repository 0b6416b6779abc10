/* Medic dashboard: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Styles that only make sense with this script (it hides what does not apply).
  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    // Copy buttons: data-copy="#element-id" copies that element's text.
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source) return;
        var text = source.textContent.trim();
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          button.setAttribute("aria-live", "polite");
          setTimeout(function () { button.textContent = label; }, 2000);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { fallback(source, done); });
        } else {
          fallback(source, done);
        }
      });
    });

    function fallback(source, done) {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* selected: Ctrl+C works */ }
    }

    // Destructive actions ask first.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });

    // Filter bars apply a changed select at once.
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });

    // "/" jumps to the search box, as in many tools.
    var search = document.querySelector("[data-search]");
    if (search) {
      document.addEventListener("keydown", function (event) {
        var tag = (event.target.tagName || "").toLowerCase();
        if (event.key === "/" && !["input", "textarea", "select"].includes(tag)) {
          event.preventDefault();
          search.focus();
          search.select();
        }
      });
    }

    // After a failed submit, put the cursor on the first field to fix.
    var invalid = document.querySelector(".has-error input, .has-error select, .has-error textarea");
    if (invalid) invalid.focus();

    // Notification targets: show the settings of the chosen kind only.
    var kind = document.querySelector("[data-kind-select]");
    if (kind) {
      var sync = function () {
        document.querySelectorAll("[data-kind]").forEach(function (group) {
          group.hidden = group.getAttribute("data-kind") !== kind.value;
        });
      };
      kind.addEventListener("change", sync);
      sync();
    }

    // Fields that belong to one choice show only while it is chosen:
    // data-show-when="schedule_kind=cron" or "scope=team,pattern". Without this script every
    // group is shown and the server reads only the chosen one's fields.
    var conditional = document.querySelectorAll("[data-show-when]");
    if (conditional.length) {
      var chosen = function (name) {
        var checked = document.querySelector('input[name="' + name + '"]:checked');
        if (checked) return checked.value;
        var select = document.querySelector('select[name="' + name + '"]');
        return select ? select.value : null;
      };
      var syncShown = function () {
        conditional.forEach(function (group) {
          var rule = group.getAttribute("data-show-when").split("=");
          var value = chosen(rule[0]);
          group.hidden = value !== null && rule[1].split(",").indexOf(value) === -1;
        });
      };
      var watched = {};
      conditional.forEach(function (group) {
        watched[group.getAttribute("data-show-when").split("=")[0]] = true;
      });
      Object.keys(watched).forEach(function (name) {
        document.querySelectorAll('[name="' + name + '"]').forEach(function (input) {
          input.addEventListener("change", syncShown);
        });
      });
      syncShown();
    }

    // Mute: typing a custom duration picks "Custom".
    var custom = document.querySelector("[data-custom-duration]");
    if (custom) {
      custom.addEventListener("input", function () {
        var radio = document.querySelector('input[name="duration"][value="custom"]');
        if (radio && custom.value) radio.checked = true;
      });
    }
  });
})();
