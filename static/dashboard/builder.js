/* Medic playbook form builder and preview.

   The form and the YAML editor are two views of one document. The form edits a copy of the
   whole parsed document (fields it does not show are carried along untouched); the server
   turns it back into YAML and validates it with the API's code, so problems carry the line of
   the YAML the operator sees on switching. A document the form did not change keeps its YAML
   text exactly (comments included). No inline script or style: CSP-clean. */
(function () {
  "use strict";

  var STEP_TYPES = ["webhook", "script", "wait", "condition", "escalate"];
  var COMMON = ["name", "type", "timeout", "retries", "on_failure"];
  // [key, label, kind, options]
  var FIELDS = {
    webhook: [
      ["url", "URL", "text", { placeholder: "https://… or ${SECRET.x}" }],
      ["method", "Method", "select", { choices: ["POST", "GET", "PUT", "PATCH", "DELETE"], blank: "POST (default)" }],
      ["headers", "Headers (JSON object)", "json", {}],
      ["body", "Body (JSON)", "json", {}],
      ["backoff", "Wait between retries", "text", { placeholder: "5s" }],
    ],
    script: [
      ["script", "Registered script", "text", {}],
      ["args", "Arguments (JSON object)", "json", {}],
      ["target", "Runs on", "target", {}],
    ],
    wait: [["duration", "Duration", "text", { placeholder: "30s" }]],
    condition: [
      ["check", "Check", "select", { choices: ["heartbeat_received", "service_status", "step"] }],
      ["step", "Earlier step (check: step)", "stepref", {}],
      ["field", "Its field", "select", { choices: ["status", "status_code", "body", "exit_code", "output"], blank: "—" }],
      ["matches", "Matches (regular expression)", "text", {}],
      ["interval", "Look every", "text", { placeholder: "5s" }],
    ],
    escalate: [["message", "Message", "textarea", {}]],
  };
  var TOP = ["name", "description", "mode", "approval", "trigger", "steps"];
  var TRIGGER = ["service_pattern", "consecutive_failures", "exit_codes", "output_regex"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function idOf(path) { return "b-" + path.replace(/[^A-Za-z0-9]+/g, "-"); }

  function post(url, token, fields, extraHeaders) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { body.set(k, fields[k]); });
    var headers = { "X-CSRFToken": token };
    Object.keys(extraHeaders || {}).forEach(function (k) { headers[k] = extraHeaders[k]; });
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: headers });
  }

  function builder(form) {
    var panel = form.querySelector("[data-builder]");
    var tabs = form.querySelector("[data-view-tabs]");
    var yamlPanel = form.querySelector("[data-panel=yaml]");
    var source = form.querySelector("[data-source]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var url = form.getAttribute("data-document-url");
    var doc = null;          // the whole document, as data
    var original = null;     // {json, text}: what the form was opened with
    var view = "yaml";
    var timer = null;
    var pending = null;      // the promise of the sync in flight
    var invalidJson = {};    // path -> true while a JSON field does not parse

    function show(result) { if (form.medicShow) form.medicShow(result); }

    // --- switching views ------------------------------------------------------------------
    function select(name) {
      view = name;
      tabs.querySelectorAll("[data-view]").forEach(function (tab) {
        var on = tab.getAttribute("data-view") === name;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
      });
      yamlPanel.hidden = name !== "yaml";
      panel.hidden = name !== "form";
    }

    function toForm() {
      return post(url, token, { source: source.value })
        .then(function (r) { return r.json(); })
        .then(function (result) {
          show(result);
          if (!result.document) {
            var box = form.querySelector("[data-problems]");
            box.insertBefore(el("p", { class: "field-error", "data-testid": "form-unavailable", text: "The form needs YAML it can read: fix the problem above first." }), box.firstChild);
            return;
          }
          doc = result.document;
          original = { json: JSON.stringify(doc), text: source.value };
          invalidJson = {};
          render();
          mark(result.problems);
          select("form");
        });
    }

    function showYaml() {
      select("yaml");
      source.dispatchEvent(new Event("input"));  // line numbers and validation
    }

    function flush() {
      clearTimeout(timer);
      var ready = timer !== null ? sync() : pending;
      timer = null;
      return ready;
    }

    function toYaml() {
      var ready = flush();
      if (!ready) {  // nothing in flight: switch now (a "line N" link then selects that line)
        showYaml();
        return Promise.resolve();
      }
      return ready.then(showYaml);
    }

    // --- form -> YAML -----------------------------------------------------------------------
    function changed() {
      clearTimeout(timer);
      timer = setTimeout(function () { timer = null; sync(); }, 400);
    }

    function sync() {
      var sent = JSON.stringify(doc);
      var mine = post(url, token, { document: sent })
        .then(function (r) { return r.json(); })
        .then(function (result) {
          if (JSON.stringify(doc) !== sent) return;  // a newer change is on its way
          if (sent === original.json) {
            source.value = original.text;  // unchanged: the operator's own text, comments kept
            return post(url, token, { source: source.value }).then(function (r) { return r.json(); }).then(apply);
          }
          source.value = result.source;
          apply(result);
        })
        .finally(function () { if (pending === mine) pending = null; });
      pending = mine;
      return mine;
    }

    function apply(result) {
      show(result);
      mark(result.problems);
    }

    // --- problems next to their fields ------------------------------------------------------
    function mark(problems) {
      panel.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
      panel.querySelectorAll(".field-error[data-generated]").forEach(function (n) { n.remove(); });
      (problems || []).forEach(function (p) {
        var path = p.path === "$" ? "" : p.path;
        var target = null;
        while (path && !target) {
          target = panel.querySelector('[data-path="' + path + '"]');
          if (!target) path = path.replace(/(\.[^.\[]+|\[\d+\])$/, "");
        }
        target = target || panel.querySelector('[data-path=""]');
        if (!target) return;
        if (target.matches("input, select, textarea")) target.setAttribute("aria-invalid", "true");
        var holder = target.closest(".bfield") || target;
        holder.appendChild(el("p", { class: "field-error", "data-generated": true, text: (p.line ? "line " + p.line + ": " : "") + p.message }));
      });
    }

    // --- rendering -------------------------------------------------------------------------
    function field(path, label, control, hint) {
      control.id = idOf(path);
      control.setAttribute("data-path", path);
      var box = el("div", { class: "bfield" }, [el("label", { for: control.id, text: label }), control]);
      if (hint) box.appendChild(el("p", { class: "hint", text: hint }));
      return box;
    }

    function setKey(obj, key, value) {
      if (value === undefined || value === "") delete obj[key];
      else obj[key] = value;
    }

    function textInput(obj, key, path, attrs) {
      var input = el("input", Object.assign({ type: "text", autocomplete: "off", spellcheck: "false" }, attrs || {}));
      var v = obj[key];
      input.value = v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
      input.addEventListener("input", function () { setKey(obj, key, input.value); changed(); });
      return input;
    }

    function numberInput(obj, key, path, min) {
      var input = el("input", { type: "text", inputmode: "numeric", autocomplete: "off" });
      input.value = obj[key] === undefined ? "" : String(obj[key]);
      input.addEventListener("input", function () {
        var raw = input.value.trim();
        setKey(obj, key, /^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw);
        changed();
      });
      return input;
    }

    function selectInput(obj, key, choices, blank) {
      var input = el("select");
      var current = obj[key] === undefined ? "" : String(obj[key]);
      if (blank !== undefined) input.appendChild(el("option", { value: "", text: blank }));
      var list = choices.slice();
      if (current && list.indexOf(current) < 0) list.push(current);  // a value the form does not know is kept
      list.forEach(function (c) { input.appendChild(el("option", { value: c, text: c })); });
      input.value = current;
      input.addEventListener("change", function () { setKey(obj, key, input.value); changed(); render(); });
      return input;
    }

    function jsonInput(obj, key, path) {
      var input = el("textarea", { rows: "3", spellcheck: "false", class: "mono" });
      input.value = obj[key] === undefined ? "" : JSON.stringify(obj[key], null, 2);
      input.addEventListener("input", function () {
        var raw = input.value.trim();
        if (!raw) { delete obj[key]; delete invalidJson[path]; input.removeAttribute("aria-invalid"); changed(); return; }
        try {
          obj[key] = JSON.parse(raw);
          delete invalidJson[path];
          input.removeAttribute("aria-invalid");
          changed();
        } catch (e) {
          invalidJson[path] = true;
          input.setAttribute("aria-invalid", "true");
        }
      });
      return input;
    }

    function listInput(obj, key) {
      var input = el("input", { type: "text", autocomplete: "off", placeholder: "1, 137" });
      input.value = Array.isArray(obj[key]) ? obj[key].join(", ") : obj[key] === undefined ? "" : String(obj[key]);
      input.addEventListener("input", function () {
        var parts = input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
        var ints = parts.every(function (s) { return /^-?\d+$/.test(s); });
        setKey(obj, key, !parts.length ? undefined : ints ? parts.map(Number) : input.value);
        changed();
      });
      return input;
    }

    function extras(obj, shown, path) {
      var rest = Object.keys(obj).filter(function (k) { return shown.indexOf(k) < 0; });
      if (!rest.length) return null;
      return el("p", { class: "hint", "data-testid": "kept-fields", "data-path-extra": path, text: "Also kept (edit in YAML): " + rest.join(", ") });
    }

    function approvalControls() {
      var raw = doc.approval === undefined ? "" : String(doc.approval);
      var kind = raw.indexOf("timeout") === 0 ? "timeout" : raw;
      var wrap = el("div", { class: "bfield" });
      var choice = el("select", { id: "b-approval", "data-path": "approval" });
      [["", "none (default)"], ["none", "none"], ["required", "required"], ["timeout", "required, with a timeout"]].forEach(function (c) {
        choice.appendChild(el("option", { value: c[0], text: c[1] }));
      });
      if (["", "none", "required", "timeout"].indexOf(kind) < 0) choice.appendChild(el("option", { value: raw, text: raw }));
      choice.value = kind;
      wrap.appendChild(el("label", { for: "b-approval", text: "Approval" }));
      wrap.appendChild(choice);
      var after = el("input", { type: "text", id: "b-approval-timeout", autocomplete: "off", placeholder: "15m" });
      after.value = kind === "timeout" ? raw.replace(/^timeout:\s*/, "") : "";
      var afterBox = el("div", { class: "bfield" }, [el("label", { for: after.id, text: "Decide within (then it runs per the approval policy)" }), after]);
      afterBox.hidden = kind !== "timeout";
      function write() {
        if (choice.value === "timeout") doc.approval = "timeout:" + (after.value.trim() || "15m");
        else setKey(doc, "approval", choice.value);
        changed();
      }
      choice.addEventListener("change", function () { write(); render(); });
      after.addEventListener("input", write);
      return [wrap, afterBox];
    }

    function onFailure(step, path, names, index) {
      var raw = step.on_failure;
      var target = raw && typeof raw === "object" ? raw.goto : typeof raw === "string" && raw.indexOf("goto:") === 0 ? raw.slice(5).trim() : null;
      var kind = target !== null ? "goto" : raw === undefined ? "" : String(raw);
      var choice = el("select");
      [["", "fail (default)"], ["fail", "fail"], ["continue", "continue"], ["escalate", "escalate"], ["goto", "go to a later step"]].forEach(function (c) {
        choice.appendChild(el("option", { value: c[0], text: c[1] }));
      });
      choice.value = kind;
      var boxes = [field(path + ".on_failure", "On failure", choice)];
      var go = el("select");
      go.appendChild(el("option", { value: "", text: "—" }));
      names.slice(index + 1).concat(target && names.indexOf(target) <= index ? [target] : []).forEach(function (n) {
        go.appendChild(el("option", { value: n, text: n }));
      });
      go.value = target || "";
      var goBox = field(path + ".on_failure.goto", "Go to step", go);
      goBox.hidden = kind !== "goto";
      boxes.push(goBox);
      function write() {
        if (choice.value === "goto") {
          var name = go.value || names[index + 1] || "";
          step.on_failure = raw && typeof raw === "object" ? { goto: name } : "goto: " + name;
        } else setKey(step, "on_failure", choice.value);
        changed();
        render();
      }
      choice.addEventListener("change", write);
      go.addEventListener("change", write);
      return boxes;
    }

    function typeFields(step, path, names, index) {
      var out = [];
      (FIELDS[step.type] || []).forEach(function (f) {
        var key = f[0], label = f[1], kind = f[2], opts = f[3];
        var p = path + "." + key;
        if (kind === "text") out.push(field(p, label, textInput(step, key, p, { placeholder: opts.placeholder })));
        else if (kind === "textarea") {
          var ta = el("textarea", { rows: "2" });
          ta.value = step[key] || "";
          ta.addEventListener("input", function () { setKey(step, key, ta.value); changed(); });
          out.push(field(p, label, ta));
        } else if (kind === "json") out.push(field(p, label, jsonInput(step, key, p)));
        else if (kind === "select") out.push(field(p, label, selectInput(step, key, opts.choices, opts.blank)));
        else if (kind === "stepref") {
          if (step.check !== "step" && step.step === undefined) return;
          out.push(field(p, label, selectInput(step, key, names.slice(0, index), "—")));
        } else if (kind === "target") {
          var t = step.target && typeof step.target === "object" ? step.target : {};
          var where = t.local ? "local" : t.agent !== undefined ? "agent" : t.labels !== undefined ? "labels" : "";
          var sel = el("select");
          [["", "—"], ["local", "the Medic worker"], ["agent", "a named agent"], ["labels", "agents with labels"]].forEach(function (c) {
            sel.appendChild(el("option", { value: c[0], text: c[1] }));
          });
          sel.value = where;
          var value = el("input", { type: "text", autocomplete: "off" });
          value.value = where === "agent" ? t.agent : where === "labels" ? (t.labels || []).join(", ") : "";
          function write() {
            if (!sel.value) delete step.target;
            else if (sel.value === "local") step.target = { local: true };
            else if (sel.value === "agent") step.target = { agent: value.value.trim() };
            else step.target = { labels: value.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean) };
            changed();
          }
          sel.addEventListener("change", function () { write(); render(); });
          value.addEventListener("input", write);
          out.push(field(p, label, sel));
          if (where === "agent" || where === "labels") out.push(field(p + "." + where, where === "agent" ? "Agent name" : "Labels (comma-separated)", value));
        }
      });
      return out;
    }

    function stepCard(step, index, names) {
      var path = "steps[" + index + "]";
      var number = index + 1;
      var card = el("fieldset", { class: "bstep", "data-path": path, "data-testid": "builder-step" });
      card.appendChild(el("legend", { text: "Step " + number + (step.name ? ": " + step.name : "") + " (" + (step.type || "?") + ")" }));
      var grid = el("div", { class: "bgrid" });
      grid.appendChild(field(path + ".name", "Name", textInput(step, "name", path + ".name")));
      var type = el("select");
      STEP_TYPES.concat(STEP_TYPES.indexOf(step.type) < 0 && step.type ? [step.type] : []).forEach(function (t) {
        type.appendChild(el("option", { value: t, text: t }));
      });
      type.value = step.type;
      type.addEventListener("change", function () {
        // The old type's own fields go (the new type refuses them); common and unknown ones stay.
        (FIELDS[step.type] || []).forEach(function (f) { delete step[f[0]]; });
        step.type = type.value;
        defaults(step);
        changed();
        render();
      });
      grid.appendChild(field(path + ".type", "Type", type));
      typeFields(step, path, names, index).forEach(function (n) { grid.appendChild(n); });
      if (step.type !== "wait") grid.appendChild(field(path + ".timeout", "Timeout", textInput(step, "timeout", path + ".timeout", { placeholder: "default" })));
      grid.appendChild(field(path + ".retries", "Retries", numberInput(step, "retries", path + ".retries")));
      onFailure(step, path, names, index).forEach(function (n) { grid.appendChild(n); });
      card.appendChild(grid);
      var shown = COMMON.concat((FIELDS[step.type] || []).map(function (f) { return f[0]; }));
      var kept = extras(step, shown, path);
      if (kept) card.appendChild(kept);
      var actions = el("div", { class: "bactions" });
      [["up", "↑ Up", "Move step " + number + " up", index === 0],
       ["down", "↓ Down", "Move step " + number + " down", index === doc.steps.length - 1],
       ["remove", "Remove", "Remove step " + number, false]].forEach(function (a) {
        var b = el("button", { type: "button", class: "btn small" + (a[0] === "remove" ? " danger" : ""), "aria-label": a[2], id: idOf(path + "-" + a[0]), disabled: a[3], text: a[1] });
        b.addEventListener("click", function () { move(index, a[0]); });
        actions.appendChild(b);
      });
      card.appendChild(actions);
      return card;
    }

    function defaults(step) {
      if (step.type === "wait" && step.duration === undefined) step.duration = "30s";
      if (step.type === "condition" && step.check === undefined) step.check = "heartbeat_received";
    }

    function move(index, how) {
      var steps = doc.steps;
      var focus = null;
      if (how === "remove") {
        steps.splice(index, 1);
        focus = steps.length ? idOf("steps[" + Math.min(index, steps.length - 1) + "]-remove") : "b-add-type";
      } else {
        var to = how === "up" ? index - 1 : index + 1;
        var item = steps.splice(index, 1)[0];
        steps.splice(to, 0, item);
        focus = idOf("steps[" + to + "]-" + how);
        if ((how === "up" && to === 0) || (how === "down" && to === steps.length - 1)) {
          focus = idOf("steps[" + to + "]-" + (how === "up" ? "down" : "up"));
        }
      }
      changed();
      render(focus);
    }

    function add(kind) {
      if (!Array.isArray(doc.steps)) doc.steps = [];
      var names = doc.steps.map(function (s) { return s && s.name; });
      var n = doc.steps.length + 1;
      var name = kind + "-" + n;
      while (names.indexOf(name) >= 0) name = kind + "-" + (++n);
      var step = { name: name, type: kind };
      defaults(step);
      doc.steps.push(step);
      changed();
      render(idOf("steps[" + (doc.steps.length - 1) + "].name"));
    }

    function render(focusId) {
      var active = focusId || (document.activeElement && panel.contains(document.activeElement) ? document.activeElement.id : null);
      panel.textContent = "";
      panel.appendChild(el("div", { "data-path": "", hidden: true }));
      // A trigger or steps missing or of the wrong shape show empty here (the problems list
      // says why); the YAML keeps what was written until the form changes something.
      if (doc.trigger === undefined || doc.trigger === null) doc.trigger = {};
      if (doc.steps === undefined || doc.steps === null) doc.steps = [];
      if (typeof doc.trigger !== "object" || Array.isArray(doc.trigger)) doc.trigger = {};
      if (!Array.isArray(doc.steps)) doc.steps = [];

      var general = el("fieldset", { class: "bsection" }, [el("legend", { text: "Playbook" })]);
      var g = el("div", { class: "bgrid" });
      g.appendChild(field("name", "Name", textInput(doc, "name", "name", { placeholder: "restart-worker" })));
      g.appendChild(field("mode", "Mode", selectInput(doc, "mode", ["shadow", "active"], "active (default)"), "Shadow records what it would do and calls nothing."));
      approvalControls().forEach(function (n) { g.appendChild(n); });
      var desc = el("textarea", { rows: "2" });
      desc.value = doc.description || "";
      desc.addEventListener("input", function () { setKey(doc, "description", desc.value); changed(); });
      g.appendChild(field("description", "Description", desc));
      general.appendChild(g);
      var keptTop = extras(doc, TOP, "");
      if (keptTop) general.appendChild(keptTop);
      panel.appendChild(general);

      var trig = el("fieldset", { class: "bsection", "data-path": "trigger" }, [el("legend", { text: "Trigger" })]);
      var t = el("div", { class: "bgrid" });
      t.appendChild(field("trigger.service_pattern", "Service pattern", textInput(doc.trigger, "service_pattern", "trigger.service_pattern", { placeholder: "worker-*" }), "Heartbeat or display name; * and ? match."));
      t.appendChild(field("trigger.consecutive_failures", "Consecutive failures", numberInput(doc.trigger, "consecutive_failures")));
      t.appendChild(field("trigger.exit_codes", "Failure signature: exit codes", listInput(doc.trigger, "exit_codes"), "Only failures with one of these exit codes (comma-separated)."));
      t.appendChild(field("trigger.output_regex", "Failure signature: output matches", textInput(doc.trigger, "output_regex", "trigger.output_regex", { placeholder: "OOM|out of memory" }), "A regular expression searched in the failed run's output."));
      trig.appendChild(t);
      var keptTrig = extras(doc.trigger, TRIGGER, "trigger");
      if (keptTrig) trig.appendChild(keptTrig);
      panel.appendChild(trig);

      var steps = el("fieldset", { class: "bsection", "data-path": "steps" }, [el("legend", { text: "Steps (in order)" })]);
      var names = doc.steps.map(function (s) { return s && s.name ? String(s.name) : ""; });
      var list = el("ol", { class: "bsteps" });
      doc.steps.forEach(function (step, i) {
        if (!step || typeof step !== "object") return;
        list.appendChild(el("li", {}, [stepCard(step, i, names)]));
      });
      steps.appendChild(list);
      var kind = el("select", { id: "b-add-type" });
      STEP_TYPES.forEach(function (s) { kind.appendChild(el("option", { value: s, text: s })); });
      var addBtn = el("button", { type: "button", class: "btn", text: "Add step" });
      addBtn.addEventListener("click", function () { add(kind.value); });
      steps.appendChild(el("div", { class: "badd" }, [el("label", { for: "b-add-type", text: "New step of type" }), kind, addBtn]));
      panel.appendChild(steps);

      if (active) {
        var again = document.getElementById(active);
        if (again) again.focus();
      }
    }

    // --- wiring ---------------------------------------------------------------------------
    tabs.hidden = false;
    tabs.querySelectorAll("[data-view]").forEach(function (tab) {
      tab.addEventListener("click", function () {
        var want = tab.getAttribute("data-view");
        if (want === view) return;
        (want === "form" ? toForm() : toYaml()).catch(function () {});
      });
      tab.addEventListener("keydown", function (event) {
        if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
        var other = tabs.querySelector('[data-view="' + (tab.getAttribute("data-view") === "yaml" ? "form" : "yaml") + '"]');
        other.focus();
        other.click();
      });
    });
    form.addEventListener("medic:jump", function () { if (view === "form") toYaml(); });
    form.addEventListener("submit", function (event) {
      if (view !== "form" || (timer === null && !pending)) return;
      event.preventDefault();
      var submitter = event.submitter;
      flush().then(function () { form.requestSubmit(submitter); });
    });
    form.medicFlush = function () { return (view === "form" && flush()) || Promise.resolve(); };
  }

  // --- preview ------------------------------------------------------------------------------
  function preview(section) {
    var button = section.querySelector("[data-preview-button]");
    var result = section.querySelector("[data-preview-result]");
    var form = document.getElementById(button.getAttribute("form"));
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var flush = form.medicFlush ? form.medicFlush() : Promise.resolve();
      flush.then(function () {
        var data = new FormData(form);
        result.textContent = "Resolving…";
        if (form.method.toLowerCase() === "get") {  // a saved playbook's current version
          var query = new URLSearchParams({ service: data.get("service") || "" });
          return fetch(form.action + "?" + query, { credentials: "same-origin", headers: { "X-Preview": "fragment" } });
        }
        var fields = { source: data.get("source") || "", service: data.get("service") || "" };
        return post(button.getAttribute("formaction"), data.get("csrfmiddlewaretoken"), fields, { "X-Preview": "fragment" });
      })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var parsed = new DOMParser().parseFromString(html, "text/html");
          result.replaceChildren.apply(result, Array.prototype.slice.call(parsed.body.childNodes));
        })
        .catch(function () { result.textContent = "The preview could not be loaded."; });
    });
  }

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    document.querySelectorAll("form[data-document-url]").forEach(builder);
    document.querySelectorAll("[data-preview]").forEach(preview);
  });
})();
