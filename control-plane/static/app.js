"use strict";
// The web agent over WebRTC, on whichever engine /api/session names:
// - Realtime: the page posts its SDP offer to OpenAI's /v1/realtime/calls with the ephemeral
//   secret /api/session gave; the events are the Realtime GA ones.
// - GPT-Live: there are no ephemeral keys: the page posts its offer to the control plane
//   (/api/session/webrtc) under its session capability, and the control plane creates the
//   session with the server key. The session starts with that request: the page waits for
//   session.started on the channel, then asks Claire to greet (session.commentary.append).
//   The data channel only carries what the page needs (the control plane restricts it).
// The model's tool calls (save_lead, trigger_call) arrive on the "oai-events" data channel
// (Realtime: function-call events; Live: a function_call item in the delegated Responses
// stream); the page forwards them to the control plane with the session capability and hands
// the answer back to the model (function_call_output, then response.create). Once
// trigger_call has placed the call, the page lets Claire finish her last reply, closes the web
// session and follows the call's progress (GET /api/calls/{id}, with the session capability).
//
// Served as a file, never inline: the page's Content-Security-Policy allows scripts from its
// own origin only.
const $ = (id) => document.getElementById(id);
const TOOLS = new Set(["save_lead", "trigger_call"]);
let pc = null, channel = null, capability = null;
// "realtime" or "live", as /api/session says.
let engine = "realtime";
// Set once trigger_call succeeded: the session closes when Claire's last reply has played.
let closeAfterReply = false;
// The reply asked for after trigger_call's result (its id once created), and the responses
// that have audio (their voice ends with output_audio_buffer.stopped, which may come long after
// response.done: the server plays the audio in real time).
let lastReplyId = null;
const voiced = new Set();
// Responses whose audio was cut by the visitor: their transcript is shown as interrupted.
const interrupted = new Set();

function setStatus(text, kind) {
  const s = $("status");
  s.textContent = text;
  s.className = kind || "";
}

function say(kind, text) {
  if (!text) return;
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("transcript").appendChild(li);
  const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  li.scrollIntoView({ block: "end", behavior: still ? "auto" : "smooth" });
  return li;
}

function send(event) {
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(event));
}

// The conversation is on: the visitor can end it.
function ready() {
  setStatus("En conversation avec Claire", "ok");
  $("stop").disabled = false;
}

// The conversation so far, as the transcript shows it, beside trigger_call's arguments: the
// phone agent continues from it (GPT-Live starts the call with it) and the call's record shows
// it. The most recent lines within the server's bounds: 64 lines, 1000 characters a line, 8000
// in all, and a request body under its 16 KiB limit. Arguments that are not a JSON object go
// as they are, for the server to say what is wrong.
function withTranscript(args) {
  let body;
  try { body = JSON.parse(args); } catch { return args; }
  if (!body || typeof body !== "object" || Array.isArray(body)) return args;
  let kept = [...$("transcript").querySelectorAll("li.agent, li.user")]
    .map((li) => ({ speaker: li.classList.contains("user") ? "caller" : "agent", text: li.textContent.trim().slice(0, 1000) }))
    .filter((l) => l.text)
    .slice(-64);
  const chars = () => kept.reduce((n, l) => n + l.text.length, 0);
  const size = () => new Blob([JSON.stringify({ ...body, transcript: kept })]).size;
  while (kept.length && (chars() > 8000 || size() > 15000)) kept.shift();
  return JSON.stringify({ ...body, transcript: kept });
}

async function runTool(name, callId, args) {
  let output;
  try {
    const res = await fetch(`/api/tools/${name}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": `Bearer ${capability}` },
      body: name === "trigger_call" ? withTranscript(args) : args,
    });
    // Success and refusals alike are JSON the model can read back to the visitor.
    output = await res.text();
    if (res.ok && name === "trigger_call") {
      say("system", "Appel lancé : votre téléphone va sonner.");
      setStatus("Appel en cours de lancement…", "ok");
      closeAfterReply = true;
      lastReplyId = null;
      let placed = {};
      try { placed = JSON.parse(output); } catch { /* no id: no progress shown */ }
      if (placed.call_id) followCall(placed.call_id);
    }
  } catch (e) {
    output = JSON.stringify({ code: "network_error", message: "Le service ne répond pas, réessayez dans un instant." });
  }
  const result = { type: "function_call_output", call_id: callId, output };
  if (engine === "live") {
    // Into the delegated Responses backend, which then words the reply Claire says.
    if (closeAfterReply) { live.finalAskedAt = performance.now(); live.finalHeard = false; }
    send({ type: "response.item.create", item: result });
  } else {
    send({ type: "conversation.item.create", item: result });
  }
  send({ type: "response.create" });
}

function onServerEvent(raw) {
  let ev;
  try { ev = JSON.parse(raw); } catch { return; }
  if (engine === "live") { onLiveEvent(ev); return; }
  switch (ev.type) {
    case "response.output_audio_transcript.done": {
      voiced.add(ev.response_id);
      const li = say("agent", ev.transcript);
      if (li && interrupted.has(ev.response_id)) {
        li.classList.add("cut");
        li.title = "Claire a été interrompue : elle n'a pas tout dit.";
      }
      break;
    }
    case "conversation.item.input_audio_transcription.completed":
      say("user", ev.transcript);
      break;
    case "output_audio_buffer.started":
      $("agent-speaking").hidden = false;
      break;
    case "response.created":
      // After trigger_call, the newest reply is the one whose end closes the session.
      if (closeAfterReply && ev.response) lastReplyId = ev.response.id;
      break;
    case "response.output_audio.done":
    case "response.output_audio_transcript.delta":
      voiced.add(ev.response_id);
      break;
    case "response.done":
      // A last reply without any audio (text only, or nothing to say) closes at once; one with
      // audio closes when it has played (output_audio_buffer.stopped).
      if (closeAfterReply && ev.response && ev.response.id === lastReplyId && !voiced.has(lastReplyId)) {
        endConversation("Conversation terminée : Claire vous appelle, votre téléphone va sonner.", "ok");
      }
      break;
    case "input_audio_buffer.speech_started":
      $("visitor-speaking").hidden = false;
      break;
    case "input_audio_buffer.speech_stopped":
      $("visitor-speaking").hidden = true;
      break;
    case "output_audio_buffer.cleared":
      // The visitor spoke over Claire: the server stopped her voice at once.
      $("agent-speaking").hidden = true;
      interrupted.add(ev.response_id);
      say("system", "Claire s'est interrompue pour vous écouter.");
      break;
    case "output_audio_buffer.stopped":
      // Claire's voice has finished playing (the buffer drained, not cut).
      $("agent-speaking").hidden = true;
      if (closeAfterReply && lastReplyId !== null && ev.response_id === lastReplyId) {
        endConversation("Conversation terminée : Claire vous appelle, votre téléphone va sonner.", "ok");
      }
      break;
    case "response.function_call_arguments.done":
      if (TOOLS.has(ev.name)) runTool(ev.name, ev.call_id, ev.arguments);
      break;
    case "error":
      setStatus(`Erreur de l'assistant : ${ev.error && ev.error.message || "inconnue"}`, "err");
      break;
  }
}

// GPT-Live: what the page keeps of the conversation. The model speaks and listens at once and
// says nothing of who is talking, so the indicators come from the audio itself (the
// microphone's level, Claire's voice on the track) and from the transcript's pace.
const GREETING = "Le visiteur vient d'ouvrir la conversation : salue-le, présente-toi et demande-lui ce qui l'amène.";
const live = { agentLine: null, userLine: null, lastAgent: 0, agentLevel: 0, pendingCut: null,
  finalAskedAt: 0, finalHeard: false, timer: null, ctx: null };

function onLiveEvent(ev) {
  switch (ev.type) {
    case "session.started":
      ready();
      send({ type: "session.commentary.append", content: GREETING, delegation_id: null });
      break;
    case "session.output_transcript.delta":
      live.lastAgent = performance.now();
      live.userLine = null;
      if (closeAfterReply) live.finalHeard = true;
      if (live.agentLine) live.agentLine.textContent += ev.delta;
      else live.agentLine = say("agent", ev.delta);
      break;
    case "session.input_transcript.delta":
      live.agentLine = null;
      if (live.userLine) live.userLine.textContent += ev.delta;
      else live.userLine = say("user", ev.delta);
      break;
    case "response.event": {
      // The delegated Responses stream: only finished items reach the page (a function call
      // to run, the rest is Claire's to say).
      const item = (ev.event && ev.event.type === "response.output_item.done" && ev.event.item) || {};
      if (item.type === "function_call" && TOOLS.has(item.name)) runTool(item.name, item.call_id, item.arguments);
      break;
    }
    case "session.closed":
      if (ev.reason !== "close_requested") {
        endConversation(ev.reason === "expired"
          ? "La conversation a atteint sa durée maximale. Vous pouvez la reprendre."
          : "La conversation a été interrompue. Réessayez.", "err", "Réessayer");
      }
      break;
    case "error":
      setStatus(`Erreur de l'assistant : ${ev.error && ev.error.message || "inconnue"}`, "err");
      break;
  }
}

// Claire's voice level, from the received track.
function hearVoice(stream) {
  try {
    live.ctx = new AudioContext();
    live.analyser = levelOf(live.ctx, stream);
  } catch { /* the transcript's pace alone says when Claire speaks */ }
}

// Ten times a second: who is speaking, a barge-in (the visitor spoke while Claire was
// speaking, and she stopped: the model yields by itself), and the end of Claire's last reply
// after trigger_call (her voice quiet for over a second), which closes the web session.
function watchLive() {
  live.timer = setInterval(() => {
    const now = performance.now();
    live.agentLevel = live.analyser ? live.analyser() : 0;
    const agent = live.agentLevel > 0.02 || now - live.lastAgent < 600;
    const visitor = $("mic-level").value > 0.15;
    $("agent-speaking").hidden = !agent;
    $("visitor-speaking").hidden = !visitor;
    if (visitor && agent && live.agentLine && !live.agentLine.classList.contains("cut") && !live.pendingCut) {
      live.pendingCut = { line: live.agentLine, at: now };
    }
    if (live.pendingCut && !agent) {
      live.pendingCut.line.classList.add("cut");
      live.pendingCut.line.title = "Claire a été interrompue : elle n'a pas tout dit.";
      say("system", "Claire s'est interrompue pour vous écouter.");
      live.agentLine = null;
      live.pendingCut = null;
    } else if (live.pendingCut && now - live.pendingCut.at > 2000) {
      live.pendingCut = null; // she went on: not an interruption
    }
    if (closeAfterReply && live.finalAskedAt) {
      const said = live.finalHeard && !agent && now - live.lastAgent > 1200;
      if (said || now - live.finalAskedAt > 20000) {
        endConversation("Conversation terminée : Claire vous appelle, votre téléphone va sonner.", "ok");
      }
    }
  }, 100);
}

// Candidates gathered (bounded): GPT-Live takes the offer with them, as OpenAI's guide says.
function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
    peer.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
}

// The voice constraints we ask for; a browser that refuses one of them gets the plain
// microphone, then each constraint it accepts applied one by one.
const VOICE = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
let micStream = null, levelTimer = null;

async function openMicrophone() {
  try {
    micStream = await navigator.mediaDevices.getUserMedia({ audio: VOICE });
  } catch (e) {
    if (e.name !== "OverconstrainedError" && e.name !== "TypeError") throw e;
    micStream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const track = micStream.getAudioTracks()[0];
    for (const [k, v] of Object.entries(VOICE)) {
      try { await track.applyConstraints({ ...track.getConstraints(), [k]: v }); } catch { /* refused: keep the default */ }
    }
  }
  const t = micStream.getAudioTracks()[0].getSettings();
  const yes = (b) => (b ? "oui" : b === false ? "non" : "?");
  $("mic-details").textContent = `Micro : ${t.sampleRate || "?"} Hz, ${t.channelCount || "?"} canal(aux), ` +
    `annulation d'écho ${yes(t.echoCancellation)}, réduction de bruit ${yes(t.noiseSuppression)}, ` +
    `gain automatique ${yes(t.autoGainControl)}`;
  $("mic-details").hidden = false;
  return micStream;
}

// The microphone level, ten times a second (an analyser on the captured stream).
function watchLevel(stream) {
  try {
    const ctx = new AudioContext();
    const level = levelOf(ctx, stream);
    levelTimer = setInterval(() => { $("mic-level").value = Math.min(1, level() * 4); }, 100);
    levelTimer.ctx = ctx;
  } catch { /* no level meter: the conversation works without it */ }
}

// A function giving the RMS level (full scale 1) of `stream` now, through an analyser in `ctx`.
function levelOf(ctx, stream) {
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  return () => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    return Math.sqrt(sum / buf.length);
  };
}

const STATES = { new: "nouvelle", connecting: "en cours", connected: "connecté", disconnected: "interrompue",
  failed: "échouée", closed: "fermée" };

function showState() {
  $("connection-state").textContent = pc ? (STATES[pc.connectionState] || pc.connectionState) : "fermée";
}

// What went wrong, in words a visitor can act on.
function explain(e) {
  switch (e && e.name) {
    case "NotAllowedError": case "SecurityError":
      return "Vous avez refusé l'accès au micro. Autorisez-le dans votre navigateur, puis réessayez.";
    case "NotFoundError": case "OverconstrainedError":
      return "Aucun micro n'a été trouvé. Branchez-en un, puis réessayez.";
    case "NotReadableError":
      return "Le micro est utilisé par une autre application. Fermez-la, puis réessayez.";
    case "ExpiredKey":
      return "La session a expiré avant la connexion. Réessayez.";
    case "WebRtcRefused":
      return `La connexion vocale a été refusée (${e.message}). Réessayez dans un instant.`;
    case "TypeError":
      return "Le réseau ne répond pas. Vérifiez votre connexion, puis réessayez.";
    default:
      return `Impossible de démarrer : ${e && e.message || "erreur inconnue"}. Réessayez.`;
  }
}

function failure(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

async function start() {
  $("start").disabled = true;
  setStatus("Connexion…");
  try {
    const res = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    const session = await res.json();
    if (!res.ok) throw new Error(session.message || `HTTP ${res.status}`);
    capability = session.capability;
    engine = session.engine === "live" ? "live" : "realtime";

    const mic = await openMicrophone();
    watchLevel(mic);
    pc = new RTCPeerConnection();
    $("live").hidden = false;
    showState();
    pc.ontrack = (e) => {
      $("voice").srcObject = e.streams[0];
      if (engine === "live") hearVoice(e.streams[0]);
    };
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
    channel = pc.createDataChannel("oai-events");
    channel.onmessage = (e) => onServerEvent(e.data);
    channel.onopen = () => {
      // GPT-Live: the session started with the offer; Claire is asked to greet on session.started.
      if (engine === "live") return;
      ready();
      send({ type: "response.create" }); // Claire speaks first
    };
    if (engine === "live") watchLive();
    pc.onconnectionstatechange = () => {
      showState();
      if (pc && ["failed", "disconnected"].includes(pc.connectionState)) {
        endConversation("La connexion a été perdue. Vérifiez votre réseau, puis réessayez.", "err", "Réessayer");
      }
    };

    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // Realtime: to OpenAI with the ephemeral secret; GPT-Live: to the control plane with the
    // session capability (the server key stays there).
    if (engine === "live") await gathered(pc);
    const bearer = engine === "live" ? capability : session.client_secret.value;
    const answer = await fetch(session.webrtc_url, {
      method: "POST",
      headers: { "Authorization": `Bearer ${bearer}`, "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
    });
    if (answer.status === 401) throw failure("ExpiredKey", "HTTP 401");
    if (!answer.ok) throw failure("WebRtcRefused", `HTTP ${answer.status}`);
    await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  } catch (e) {
    endConversation(explain(e), "err", "Réessayer");
  }
}

// Closes the web session, whatever its state: the microphone and every sent track stopped, the
// data channel and the peer connection closed, the level meter and its audio context gone, the
// page back to its start (the start button enabled and focused, with `startLabel`). The call's
// progress, if one was placed, keeps being followed.
function stop(startLabel) {
  // GPT-Live bills by the second: say goodbye so the session ends now, not when it notices.
  if (engine === "live") send({ type: "session.close" });
  if (pc) pc.getSenders().forEach((s) => s.track && s.track.stop());
  if (live.timer) { clearInterval(live.timer); live.timer = null; }
  if (live.ctx) { live.ctx.close(); live.ctx = null; }
  Object.assign(live, { agentLine: null, userLine: null, lastAgent: 0, agentLevel: 0, pendingCut: null,
    finalAskedAt: 0, finalHeard: false, analyser: null });
  if (channel) {
    channel.onmessage = null;
    channel.onopen = null;
    channel.close();
  }
  if (pc) {
    pc.onconnectionstatechange = null;
    pc.ontrack = null;
    pc.close();
  }
  if (micStream) micStream.getTracks().forEach((t) => t.stop());
  if (levelTimer) { clearInterval(levelTimer); if (levelTimer.ctx) levelTimer.ctx.close(); }
  $("voice").srcObject = null;
  micStream = null;
  levelTimer = null;
  pc = null;
  channel = null;
  closeAfterReply = false;
  lastReplyId = null;
  $("agent-speaking").hidden = true;
  $("visitor-speaking").hidden = true;
  $("mic-level").value = 0;
  showState();
  const wasFocused = document.activeElement === $("stop");
  $("start").textContent = startLabel || "Démarrer la conversation";
  $("start").disabled = false;
  $("stop").disabled = true;
  // A keyboard user who pressed « Terminer » keeps the focus on a usable button.
  if (wasFocused) $("start").focus();
}

// stop() and what the visitor reads about it.
function endConversation(text, kind, startLabel) {
  stop(startLabel);
  setStatus(text, kind);
}

// The call's progress, from the control plane: asked every 1.5 s until the call has ended (the
// capability and the call id prove it is this visitor's call; a 429 waits its Retry-After).
// Each change is announced (aria-live) and its stage kept in data-stage.
let followed = null;
function followCall(callId) {
  const box = $("call-progress");
  const session = capability;
  followed = callId;
  box.hidden = false;
  box.dataset.stage = "placing";
  box.textContent = "Nous composons votre numéro…";
  let failures = 0;
  const poll = async () => {
    if (followed !== callId) return;
    try {
      const res = await fetch(`/api/calls/${encodeURIComponent(callId)}`, {
        headers: { "Authorization": `Bearer ${session}` },
        cache: "no-store",
      });
      const body = await res.json().catch(() => ({}));
      if (res.status === 429) {
        // Asked too often (another tab follows a call too): ask again when the server says.
        const wait = Number(res.headers.get("Retry-After")) || 5;
        setTimeout(poll, Math.min(wait, 60) * 1000);
        return;
      }
      if (!res.ok) {
        box.dataset.stage = "unknown";
        box.textContent = res.status === 401
          ? "Le suivi de l'appel a expiré : votre téléphone peut quand même sonner."
          : "Le suivi de l'appel n'est pas disponible.";
        return;
      }
      failures = 0;
      if (box.dataset.stage !== body.stage || box.textContent !== body.message) {
        box.dataset.stage = body.stage;
        box.textContent = body.message;
      }
      if (body.ended) return;
    } catch {
      failures += 1;
      if (failures >= 5) {
        box.dataset.stage = "unknown";
        box.textContent = "Le suivi de l'appel est interrompu (réseau). Votre téléphone peut quand même sonner.";
        return;
      }
    }
    setTimeout(poll, 1500);
  };
  poll();
}

// The typed form. The mask and the E.164 preview help the visitor; the control plane decides
// (its refusals are shown next to the field they concern).
function digitsOf(raw) {
  const plus = raw.trim().startsWith("+");
  let d = raw.replace(/\D/g, "");
  if (!plus && d.startsWith("00")) return { plus: true, d: d.slice(2) };
  return { plus, d };
}

function maskPhone(raw) {
  const { plus, d } = digitsOf(raw);
  if (plus) return "+" + (d.slice(0, 2) + " " + d.slice(2).replace(/(\d{2})(?=\d)/g, "$1 ")).trim();
  return d.slice(0, 10).replace(/(\d{2})(?=\d)/g, "$1 ");
}

function e164Preview(raw) {
  const { plus, d } = digitsOf(raw);
  if (plus) return d.length >= 8 ? "+" + d : "";
  return d.length === 10 && d.startsWith("0") ? "+33" + d.slice(1) : "";
}

$("phone").addEventListener("input", () => {
  const el = $("phone");
  el.value = maskPhone(el.value);
  el.removeAttribute("aria-invalid");
  const e164 = e164Preview(el.value);
  $("phone-hint").textContent = e164 ? `Nous appellerons le ${e164}.` : "Un numéro français, ou l'indicatif du pays (+32…).";
});

const FIELD_OF = { first_name_invalid: "first-name", last_name_invalid: "last-name", consent_required: "consent" };

function formSays(text, kind, field) {
  $("form-result").textContent = text;
  $("form-result").className = kind;
  for (const id of ["first-name", "last-name", "phone", "consent"]) $(id).removeAttribute("aria-invalid");
  if (field) { $(field).setAttribute("aria-invalid", "true"); $(field).focus(); }
}

async function postTool(name, body) {
  const res = await fetch(`/api/tools/${name}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": `Bearer ${capability}` },
    body: JSON.stringify(body),
  });
  return { ok: res.ok, body: await res.json().catch(() => ({})) };
}

$("lead-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("form-submit").disabled = true;
  formSays("Envoi…", "");
  try {
    if (!capability) {
      const res = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      const session = await res.json();
      if (!res.ok) throw new Error(session.message || `HTTP ${res.status}`);
      capability = session.capability;
    }
    const lead = await postTool("save_lead", {
      first_name: $("first-name").value, last_name: $("last-name").value,
      phone: $("phone").value, consent: $("consent").checked,
    });
    if (!lead.ok) {
      const code = lead.body.code || "";
      formSays(lead.body.message || "Enregistrement refusé.", "err", code.startsWith("phone") ? "phone" : FIELD_OF[code]);
      return;
    }
    const call = await postTool("trigger_call", { lead_id: lead.body.lead_id, summary: "Demande de rappel par le formulaire du site." });
    if (!call.ok) {
      const code = call.body.code || "";
      formSays(call.body.message || "Appel refusé.", "err", code.startsWith("phone") ? "phone" : undefined);
      return;
    }
    formSays(`C'est noté : Claire vous appelle au ${lead.body.phone_e164}.`, "ok");
    if (call.body.call_id) followCall(call.body.call_id);
  } catch (e) {
    formSays("Le service ne répond pas. Vérifiez votre connexion, puis réessayez.", "err");
  } finally {
    $("form-submit").disabled = false;
  }
});

$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => endConversation("Conversation terminée. Vous pouvez la reprendre quand vous voulez."));
