// chaoscheck: the Chaos tab's panel (run status, live counters, fault injection, roll back, report).
// The tab and its fault timeline table are Locust's own (extended_tabs / extended_tables); this script
// draws the rest above that table, from chaos/state. Everything from the server is set as text
// (textContent, input values), never parsed as markup.
(function () {
  "use strict";

  var TAB = "chaos";
  var PANEL_ID = "chaoscheck-panel";
  var PLACE_MS = 300;
  var POLL_MS = 1000;
  var panel = null;
  var fields = {};
  var formKey = null;
  var latest = null;
  var polling = false;

  function onTab() {
    return new URLSearchParams(window.location.search).get("tab") === TAB;
  }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === "text") node.textContent = props[key];
      else if (key === "className") node.className = props[key];
      else node.setAttribute(key, props[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function build() {
    fields.run = el("span", { className: "cc-run", text: "No run yet: start a test." });
    fields.status = el("span", { className: "cc-status" });
    fields.report = el("a", { className: "cc-report", target: "_blank", rel: "noopener" });
    fields.error = el("div", { className: "cc-error", role: "alert" });
    fields.counts = {};
    var counts = el("div", { className: "cc-counts" });
    ["ok", "fail", "info", "omitted"].forEach(function (name) {
      fields.counts[name] = el("span", { className: "cc-n", "data-count": name, text: "0" });
      counts.appendChild(el("div", { className: "cc-count cc-" + name }, [
        fields.counts[name], el("span", { className: "cc-label", text: name }),
      ]));
    });
    fields.open = el("span", { className: "cc-open-list", text: "none" });
    fields.action = el("select", { name: "action", "aria-label": "fault action" });
    fields.params = el("span", { className: "cc-params" });
    fields.inject = el("button", { type: "submit", className: "cc-button cc-inject", text: "Inject" });
    fields.rollback = el("button", {
      type: "button", className: "cc-button cc-rollback", text: "Roll back everything",
    });
    fields.form = el("form", { className: "cc-form" }, [
      el("label", {}, ["Fault ", fields.action]), fields.params, fields.inject, fields.rollback,
    ]);
    fields.summary = el("div", { className: "cc-action-summary" });
    fields.message = el("div", { className: "cc-message", role: "status" });
    fields.previous = el("div", { className: "cc-previous" });
    fields.form.addEventListener("submit", function (event) {
      event.preventDefault();
      inject();
    });
    fields.action.addEventListener("change", drawParams);
    fields.rollback.addEventListener("click", rollback);
    return el("section", { id: PANEL_ID, className: "chaoscheck", "aria-label": "chaoscheck" }, [
      el("div", { className: "cc-head" }, [
        el("strong", { text: "chaoscheck" }), fields.run, fields.status, fields.report,
      ]),
      fields.error,
      counts,
      el("div", { className: "cc-open" }, ["Open faults: ", fields.open]),
      fields.form,
      fields.summary,
      fields.message,
      fields.previous,
      el("div", { className: "cc-timeline-title", text: "Fault timeline (faults.jsonl)" }),
    ]);
  }

  function tableBelow() {
    var cell = document.querySelector('th[data-sortkey="origin"]');
    if (!cell) return null;
    return cell.closest(".MuiTableContainer-root") || cell.closest("table");
  }

  function place() {
    if (!onTab()) {
      if (panel && panel.parentNode) panel.parentNode.removeChild(panel);
      return false;
    }
    if (!panel) panel = build();
    var table = tableBelow();
    if (table && table.parentNode && panel.nextSibling !== table) {
      table.parentNode.insertBefore(panel, table);
    } else if (!table && !panel.parentNode) {
      document.body.appendChild(panel);
    }
    return true;
  }

  // drawing -----------------------------------------------------------------------------------------

  function actionOf(name) {
    var actions = (latest && latest.actions) || [];
    for (var i = 0; i < actions.length; i++) if (actions[i].name === name) return actions[i];
    return null;
  }

  function drawForm(actions) {
    var key = JSON.stringify(actions);
    if (key === formKey) return;
    formKey = key;
    var chosen = fields.action.value;
    fields.action.replaceChildren();
    actions.forEach(function (action) {
      fields.action.appendChild(el("option", { value: action.name, text: action.name }));
    });
    if (actionOf(chosen)) fields.action.value = chosen;
    drawParams();
  }

  function numberInput(name, value, title, min, step) {
    var input = el("input", { type: "number", name: name, step: step, title: title || name });
    if (min !== null && min !== undefined) input.setAttribute("min", String(min));
    if (value !== null && value !== undefined) input.value = String(value);
    return input;
  }

  function drawParams() {
    var action = actionOf(fields.action.value);
    fields.params.replaceChildren();
    fields.summary.textContent = action ? action.summary : "";
    if (!action) return;
    action.params.forEach(function (param) {
      var input;
      if (param.type === "integer" || param.type === "number") {
        input = numberInput(param.name, param.default, param.description, param.minimum,
          param.type === "integer" ? "1" : "any");
        if (param.maximum !== null && param.maximum !== undefined) input.setAttribute("max", String(param.maximum));
      } else if (param.type === "boolean") {
        input = el("input", { type: "checkbox", name: param.name, title: param.description || param.name });
        input.checked = param.default === true;
      } else {
        input = el("input", { type: "text", name: param.name, title: param.description || param.name });
        if (param.default !== null && param.default !== undefined) input.value = String(param.default);
      }
      input.setAttribute("data-param", param.name);
      input.setAttribute("data-type", param.type);
      fields.params.appendChild(el("label", {}, [param.name + " ", input]));
    });
    if (action.lasting) {
      var duration = numberInput("duration", null, "seconds; empty: until rolled back", 0, "any");
      duration.setAttribute("placeholder", "until rolled back");
      fields.params.appendChild(el("label", {}, ["duration (s) ", duration]));
    } else {
      var settle = numberInput("settle", null, "seconds observed after the fault", 0, "any");
      settle.setAttribute("placeholder", "10");
      fields.params.appendChild(el("label", {}, ["settle (s) ", settle]));
    }
  }

  function draw(data) {
    latest = data;
    var run = data.run;
    drawForm(data.actions || []);
    fields.error.textContent = data.error ? "The last test could not start: " + data.error : "";
    if (!run) {
      fields.run.textContent = "No run yet: start a test.";
      fields.status.textContent = "";
      fields.report.removeAttribute("href");
      fields.report.textContent = "";
    } else {
      fields.run.textContent = "run " + run.id + " · scenario " + run.scenario + " · target " + run.target;
      var status = run.status + (run.aborted ? " (aborted)" : "");
      if (run.verdict) status += ": " + run.verdict.toUpperCase();
      if (run.error) status += " (" + run.error + ")";
      fields.status.textContent = status;
      fields.status.className = "cc-status cc-status-" + run.status + (run.verdict ? " cc-verdict-" + run.verdict : "");
      link(fields.report, run.report, "open the report");
      Object.keys(fields.counts).forEach(function (name) {
        fields.counts[name].textContent = Number((run.counts || {})[name] || 0).toLocaleString("en");
      });
      fields.open.textContent = run.open.length
        ? run.open.map(function (f) { return "fault " + f.fault + " " + f.action + " on " + f.target; }).join("; ")
        : "none";
    }
    var canInject = Boolean(run && run.can_inject);
    fields.inject.disabled = !canInject;
    fields.inject.title = canInject ? "" : (run ? "only while a test runs on a target with chaos" : "start a test first");
    fields.rollback.disabled = !(run && (run.status === "running" || run.open.length));
    drawPrevious(data.previous || []);
  }

  function link(anchor, href, text) {
    if (typeof href === "string" && href.indexOf("chaos/runs/") === 0) {
      anchor.setAttribute("href", href);
      anchor.textContent = text;
    } else {
      anchor.removeAttribute("href");
      anchor.textContent = "";
    }
  }

  function drawPrevious(previous) {
    fields.previous.replaceChildren();
    if (!previous.length) return;
    fields.previous.appendChild(document.createTextNode("Earlier runs: "));
    previous.forEach(function (run, index) {
      if (index) fields.previous.appendChild(document.createTextNode(", "));
      var anchor = el("a", { target: "_blank", rel: "noopener" });
      link(anchor, run.report, run.id + (run.verdict ? " (" + run.verdict + ")" : ""));
      fields.previous.appendChild(anchor.getAttribute("href") ? anchor : document.createTextNode(run.id));
    });
  }

  // talking to the server ---------------------------------------------------------------------------

  function refresh() {
    if (polling || !place()) return;
    polling = true;
    fetch("chaos/state", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(draw)
      .catch(function (error) { fields.message.textContent = "chaos/state: " + error; })
      .then(function () { polling = false; });
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (response) { return response.json(); });
  }

  function valueOf(input) {
    if (input.getAttribute("data-type") === "boolean") return input.checked;
    if (input.value === "") return null;
    if (input.getAttribute("data-type") === "integer") return parseInt(input.value, 10);
    if (input.type === "number") return Number(input.value);
    return input.value;
  }

  function inject() {
    var body = { action: fields.action.value, params: {} };
    fields.params.querySelectorAll("input").forEach(function (input) {
      var value = valueOf(input);
      if (input.hasAttribute("data-param")) {
        if (value !== null) body.params[input.getAttribute("data-param")] = value;
      } else {
        body[input.name] = value;
      }
    });
    fields.inject.disabled = true;
    fields.message.textContent = "injecting " + body.action + "...";
    post("chaos/inject", body)
      .then(function (answer) {
        fields.message.textContent = answer.ok
          ? "fault " + answer.fault + ": " + answer.action + " on " + answer.target + " injected"
          : "not injected: " + answer.error;
      })
      .catch(function (error) { fields.message.textContent = "chaos/inject: " + error; })
      .then(refresh);
  }

  function rollback() {
    fields.rollback.disabled = true;
    fields.message.textContent = "rolling back...";
    post("chaos/rollback")
      .then(function (answer) {
        var failed = (answer.outcomes || []).filter(function (o) { return !o.ok; });
        fields.message.textContent = answer.error
          ? "not rolled back: " + answer.error
          : (answer.outcomes || []).length + " fault(s) rolled back; the scenario's schedule is stopped" +
            (failed.length ? "; failed: " + failed.map(function (o) { return "fault " + o.fault + ": " + o.error; }).join("; ") : "");
      })
      .catch(function (error) { fields.message.textContent = "chaos/rollback: " + error; })
      .then(refresh);
  }

  setInterval(place, PLACE_MS);
  setInterval(refresh, POLL_MS);
  refresh();
})();
