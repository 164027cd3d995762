// Callway operator page: read-only views of leads and calls from /admin/api/* (the same JSON
// as `callway-control … --json`). No framework, nothing inline (the page's CSP forbids it):
// every element is built with createElement and textContent, never from HTML strings.
"use strict";

const $ = (id) => document.getElementById(id);
const SECTIONS = ["login", "leads", "lead", "call"];

function show(which) {
  for (const s of SECTIONS) $(s).hidden = s !== which;
  $("logout").hidden = which === "login";
  $("status").textContent = "";
}

// el("div", {class: "x", href: "#"}, child, "text", …)
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const when = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "") + " UTC" : "—");
const secs = (ms) => (ms === null || ms === undefined ? "—" : (ms / 1000).toFixed(1) + " s");
const outcome = (c) =>
  c ? c.status + (c.end_reason ? " · " + c.end_reason : "") + (c.duration_ms !== null ? " · " + secs(c.duration_ms) : "") : "aucun appel";

// A cost in the price table's currency (millionths kept exact: at least two decimals).
const money = (micros, currency) => {
  let s = (micros / 1e6).toFixed(6);
  while (s.endsWith("0") && s.length - s.indexOf(".") > 3) s = s.slice(0, -1);
  return s + " " + currency;
};
const costLine = (k) =>
  money(k.total_micros, k.currency) + " (Twilio " + k.twilio_seconds + " s : " + money(k.twilio_micros, k.currency) +
  " ; OpenAI " + (k.model ? k.model + " " : "") + money(k.openai_micros, k.currency) + ")";

async function api(path) {
  const r = await fetch("/admin/api/" + path, { credentials: "same-origin", headers: { accept: "application/json" } });
  if (r.status === 401) {
    show("login");
    return null;
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    $("status").textContent = (body.message || "erreur") + " (" + r.status + ")";
    return null;
  }
  return body;
}

function leadCard(l) {
  return el(
    "li",
    { class: "card lead-card" },
    el("a", { href: "#lead=" + l.id, class: "name" }, l.first_name + " " + l.last_name),
    el("span", { class: "phone" }, l.phone),
    el("span", { class: "meta" }, "créé " + when(l.created_at) + " · " + l.source + " · consentement " + when(l.consent_at)),
    el("span", { class: "meta" }, l.calls + " appel(s) · dernier : " + outcome(l.last_call)),
  );
}

async function renderLeads() {
  const list = await api("leads");
  if (!list) return;
  show("leads");
  const ol = $("lead-list");
  ol.replaceChildren(...list.map(leadCard));
  if (list.length === 0) ol.append(el("li", { class: "card" }, "Aucun prospect pour l'instant."));
}

async function renderLead(id) {
  const r = await api("leads/" + encodeURIComponent(id));
  if (!r) return;
  show("lead");
  const l = r.lead;
  const costOf = (id) => (r.cost ? r.cost.calls.find((k) => k.call_id === id) : null);
  const calls = el("ol", { class: "cards", id: "call-list" });
  for (const c of r.calls) {
    calls.append(
      el("li", { class: "card call-card" },
        el("a", { href: "#call=" + c.id }, "Appel du " + when(c.created_at)),
        el("span", { class: "meta" }, "tentative " + c.attempt + " · " + outcome(c)),
        costOf(c.id) ? el("span", { class: "meta cost" }, "coût " + costLine(costOf(c.id))) : null,
        c.outcome_summary ? el("p", { class: "outcome" }, c.outcome_summary) : null),
    );
  }
  if (r.calls.length === 0) calls.append(el("li", { class: "card" }, "Aucun appel."));
  const retries = r.retries.map((t) =>
    el("li", { class: "card" }, "tentative " + t.attempt + " après " + t.reason + " : " + t.state + ", prévue " + when(t.due_at) + (t.detail ? " (" + t.detail + ")" : "")));
  $("lead").replaceChildren(
    el("p", {}, el("a", { href: "#" }, "← Prospects")),
    el("h2", {}, l.first_name + " " + l.last_name),
    el("dl", { class: "facts" },
      el("dt", {}, "Numéro"), el("dd", { class: "phone" }, l.phone),
      el("dt", {}, "Source"), el("dd", {}, l.source),
      el("dt", {}, "Consentement"), el("dd", {}, when(l.consent_at) + " — " + l.consent_text),
      el("dt", {}, "Créé / modifié"), el("dd", {}, when(l.created_at) + " / " + when(l.updated_at)),
      el("dt", {}, "Identifiant"), el("dd", { class: "id" }, l.id)),
    el("h3", {}, "Appels"),
    calls,
    r.cost ? el("p", { class: "cost", id: "lead-cost" }, "Coût des appels : " + costLine(r.cost.total)) : null,
    retries.length ? el("h3", {}, "Rappels programmés") : null,
    retries.length ? el("ol", { class: "cards" }, ...retries) : null,
  );
}

// The timeline twice: a track where each step sits at its time, then the steps in order.
function timeline(items, total) {
  const track = el("div", { class: "track", "aria-hidden": "true" });
  for (const t of items) {
    const m = el("span", { class: "mark kind-" + t.kind, title: t.what });
    // CSSOM, not a style attribute: allowed by the page's CSP.
    m.style.left = (total > 0 ? (100 * t.offset_ms) / total : 0).toFixed(2) + "%";
    track.append(m);
  }
  const ol = el("ol", { class: "timeline" });
  for (const t of items) {
    ol.append(
      el("li", { class: "step kind-" + t.kind },
        el("span", { class: "at" }, "+" + secs(t.offset_ms)),
        el("span", { class: "what" }, t.what),
        el("span", { class: "source" }, t.source),
        t.detail ? el("span", { class: "detail" }, t.detail) : null),
    );
  }
  return [track, ol];
}

const SPEAKERS = { agent: "Agent", caller: "Prospect", summary: "Résumé de la visite" };

async function renderCall(id) {
  const r = await api("calls/" + encodeURIComponent(id));
  if (!r) return;
  show("call");
  const c = r.call;
  const d = r.durations;
  const u = r.usage;
  const dialogue = el("ol", { class: "dialogue" });
  for (const line of r.dialogue) {
    dialogue.append(
      el("li", { class: "line " + line.speaker + " part-" + line.part },
        el("span", { class: "who" }, SPEAKERS[line.speaker]
          + (line.part === "web" && line.speaker !== "summary" ? " · sur le site" : "")
          + (line.at_ms !== null ? " · " + secs(line.at_ms) : "")),
        el("span", { class: "text" }, line.text)),
    );
  }
  if (r.dialogue.length === 0) dialogue.append(el("li", { class: "line" }, "Rien d'enregistré."));
  $("call").replaceChildren(
    el("p", {}, el("a", { href: "#lead=" + r.lead.id }, "← " + r.lead.first_name + " " + r.lead.last_name)),
    el("h2", {}, "Appel du " + when(c.created_at)),
    el("dl", { class: "facts" },
      el("dt", {}, "Statut"), el("dd", { id: "call-status" }, c.status + (c.end_reason ? " · " + c.end_reason + " (" + (c.end_side || "?") + ")" : "")),
      el("dt", {}, "Prospect"), el("dd", {}, r.lead.first_name + " " + r.lead.last_name + " · ", el("span", { class: "phone" }, r.lead.phone)),
      el("dt", {}, "Tentative"), el("dd", {}, String(c.attempt)),
      el("dt", {}, "Durées"), el("dd", {}, "sonnerie " + secs(d.ringing_ms) + " · conversation " + secs(d.talk_ms) + " · total " + secs(d.total_ms)),
      r.cost ? el("dt", {}, "Coût") : null, r.cost ? el("dd", { id: "call-cost" }, costLine(r.cost)) : null,
      el("dt", {}, "Twilio"), el("dd", { class: "id" }, c.call_sid || "—"),
      el("dt", {}, "Identifiant"), el("dd", { class: "id" }, c.id)),
    el("h3", {}, "Chronologie"),
    ...timeline(r.timeline, d.total_ms),
    el("h3", {}, "Conversation"),
    dialogue,
    el("h3", {}, "Résumé de l'appel"),
    el("p", { class: "call-summary outcome" }, r.summary.call || "Pas encore de résumé (écrit à la fin de l'appel quand SUMMARY_MODEL est défini)."),
    el("h3", {}, "Résumé de la visite web"),
    el("p", { class: "web-summary" }, r.summary.web || "—"),
    el("h3", {}, "Consommation"),
    el("p", { class: "usage" }, u.input_tokens + " jetons en entrée · " + u.output_tokens + " en sortie · " + u.responses + " réponse(s)"),
  );
}

function route() {
  const h = location.hash;
  $("login-failed").hidden = h !== "#login-failed";
  if (h.startsWith("#lead=")) return renderLead(h.slice(6));
  if (h.startsWith("#call=")) return renderCall(h.slice(6));
  return renderLeads();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
