//! The page, end to end in a real browser: headless Chromium (Debian's, over WebDriver) opens
//! the control plane's page with a fake microphone speaking French (espeak-ng, made at test
//! time), clicks « Démarrer la conversation », and talks over WebRTC to the OpenAI simulator:
//! the connection reaches `connected`, Claire's voice arrives (inbound audio bytes), her
//! transcript renders, the visitor's speech interrupts her (the server clears its output
//! buffer, the page says so), the scripted model calls `save_lead` and `trigger_call` through
//! the page, the Twilio simulator places the call and streams it to the real `callway-gateway`
//! binary, which relays it to the OpenAI simulator (the phone agent greets the callee, who
//! hears it), the page closes the web session once Claire's last words have played (tracks
//! stopped, data channel and peer connection closed) and shows the call's progress from the
//! control plane, fed by Twilio's signed callbacks, until it has ended.
//! A failure saves a screenshot and the console log under `target/browser-tests/`. A second
//! test types the lead into the form: valid, invalid and premium-rate numbers, each answered
//! inline from the control plane, the placed call followed to its end. A third ends a
//! conversation with « Terminer », from the keyboard, while Claire speaks. None of them sees a
//! Content-Security-Policy violation in the console (the third proves the check sees one).

mod common;

use std::path::Path;
use std::time::Duration;

use callway_sim_openai::audio::{read_wav, wav_bytes};
use callway_sim_openai::{Reply, Script, SimConfig, ToolCall};
use callway_sim_twilio::api::CallStatus;
use callway_sim_twilio::caller::{EndPolicy, Segment};
use common::browser::Browser;
use common::world::{world_through_gateway, world_with};

/// French speech from espeak-ng: samples and rate.
fn espeak(dir: &Path, name: &str, voice: &str, text: &str) -> (Vec<i16>, u32) {
    let wav = dir.join(format!("{name}.wav"));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", "160", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng runs (Debian package espeak-ng, installed by scripts/deps)");
    assert!(status.success());
    read_wav(&std::fs::read(&wav).unwrap()).unwrap()
}

/// Claire saying `text` (espeak-ng, at half level).
fn claire(dir: &Path, name: &str, text: &str) -> Reply {
    espeak(dir, name, "fr+f3", text);
    Reply::from_wav_file(dir.join(format!("{name}.wav")), text, 0.5).unwrap()
}

/// The visitor's microphone: 2 s of silence, a French sentence (espeak-ng), 4 s of silence —
/// Chromium loops it, so the visitor speaks once every loop.
fn microphone(dir: &Path) -> std::path::PathBuf {
    let (voice, rate) = espeak(
        dir,
        "visitor",
        "fr",
        "Je m'appelle Claire Martin. Mon numéro est le zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit.",
    );
    let silence = |secs: u32| vec![0i16; (rate * secs) as usize];
    let mut all = silence(2);
    all.extend(&voice);
    all.extend(silence(4));
    let mic = dir.join("microphone.wav");
    std::fs::write(&mic, wav_bytes(&all, rate)).unwrap();
    mic
}

fn script(dir: &Path) -> Script {
    Script::replies([
        claire(
            dir,
            "greeting",
            "Bonjour, je suis Claire, de Callway. Je peux vous rappeler au téléphone pour parler de votre projet. Pour cela, il me faut votre prénom, votre nom et votre numéro. Prenez votre temps, je vous écoute.",
        ),
        claire(dir, "noted", "Merci Claire, c'est noté. Je vous rappelle maintenant ?"),
        claire(dir, "calling", "Je vous appelle tout de suite."),
    ])
    .with_tool_call(ToolCall::new(
        1,
        "save_lead",
        r#"{"first_name":"Claire","last_name":"Martin","phone":"06 12 34 56 78","consent":true}"#,
    ))
    .with_tool_call(ToolCall::new(
        2,
        "trigger_call",
        r#"{"lead_id":"{{output.lead_id}}","summary":"Claire Martin veut être rappelée au sujet de Callway."}"#,
    ))
}

/// The OpenAI voice engine of the web visit (`OPENAI_VOICE_API`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Realtime,
    Live,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_talks_to_claire_in_chromium_and_is_called_back_on_realtime() {
    talk_and_call_back(Engine::Realtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_talks_to_claire_in_chromium_and_is_called_back_on_gpt_live() {
    talk_and_call_back(Engine::Live).await;
}

/// The visit on `engine`: the same page, the same UX, the same checks; then what the OpenAI
/// simulator saw of the web session, in the engine's own protocol. The callback runs on the
/// same engine: the gateway reads the same `OPENAI_VOICE_API`.
async fn talk_and_call_back(engine: Engine) {
    // A hang guard, not a timing assertion: the flow takes about 20 s.
    let _watchdog = common::browser::Watchdog::new("the browser test", 300);
    let dir = tempfile::tempdir().unwrap();
    let mic = microphone(dir.path());
    let openai =
        SimConfig { script: script(dir.path()), ttfb: Duration::from_millis(100), ..SimConfig::default() };
    let env: &[(&str, &str)] = match engine {
        Engine::Realtime => &[],
        Engine::Live => &[("OPENAI_VOICE_API", "live")],
    };
    let name = match engine {
        Engine::Realtime => "talk_and_call_back",
        Engine::Live => "talk_and_call_back_live",
    };
    // The callee waits for the phone agent's greeting (relayed by the gateway), then hangs up.
    let w = world_through_gateway(openai, env, |api| {
        api.caller.script = vec![Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 }];
        api.caller.end = EndPolicy::ScriptEnd;
    })
    .await;
    let browser = Browser::start(name, Some(&mic)).await;
    browser.goto(&w.cp.url("/")).await;
    // What the page shows only for a moment is recorded as it happens.
    browser
        .eval(
            "window.seen = { agent: false, visitor: false, level: 0 }; \
             new MutationObserver(() => { \
               if (!document.getElementById('agent-speaking').hidden) seen.agent = true; \
               if (!document.getElementById('visitor-speaking').hidden) seen.visitor = true; \
             }).observe(document.getElementById('live'), { subtree: true, attributes: true }); \
             setInterval(() => { seen.level = Math.max(seen.level, document.getElementById('mic-level').value); }, 50); \
             window.stages = []; \
             new MutationObserver(() => { \
               const s = document.getElementById('call-progress').dataset.stage; \
               if (s && stages[stages.length - 1] !== s) stages.push(s); \
             }).observe(document.getElementById('call-progress'), { attributes: true }); \
             return true;",
        )
        .await;
    browser.click("#start").await;

    let minute = Duration::from_secs(60);
    browser
        .wait_for(
            "the WebRTC connection",
            minute,
            "return typeof pc === 'object' && pc && pc.connectionState === 'connected'",
        )
        .await;
    browser
        .wait_for(
            "the data channel",
            minute,
            "return document.getElementById('status').textContent.includes('En conversation avec Claire')",
        )
        .await;
    // The session's parts, kept to check they are closed at the end.
    browser.eval("window.parts = { pc, channel, mic: micStream }; return true;").await;
    // The web session has its script; the phone call's session (accepted later, from the
    // gateway) gets a short greeting of its own.
    w.openai
        .configure(|c| c.script = Script::replies([Reply::tone(440.0, 800, "Bonjour Claire, ici Callway.")]));
    let details = browser
        .wait_for(
            "the microphone's settings",
            minute,
            "return document.getElementById('mic-details').textContent",
        )
        .await;
    let details = details.as_str().unwrap_or_default();
    for part in ["Hz", "1 canal", "annulation d'écho oui", "réduction de bruit oui", "gain automatique oui"]
    {
        if !details.contains(part) {
            browser.fail(&format!("microphone details without {part:?}: {details}")).await;
        }
    }
    browser
        .wait_for(
            "the connection state shown",
            minute,
            "return document.getElementById('connection-state').textContent === 'connecté'",
        )
        .await;
    let received = browser
        .wait_for(
            "Claire's voice (inbound audio bytes)",
            minute,
            "if (!pc) return 0; const s = await pc.getStats(); let b = 0; \
             s.forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'audio') b += r.bytesReceived; }); \
             return b > 8000 ? b : 0;",
        )
        .await;
    browser
        .wait_for(
            "Claire's greeting in the transcript",
            minute,
            // Its first words: on GPT-Live the transcript holds only what was said before the
            // visitor cut in, which a busy machine may make short.
            "return [...document.querySelectorAll('#transcript li.agent')].some(li => li.textContent.startsWith('Bonjour'))",
        )
        .await;
    browser
        .wait_for(
            "the visitor interrupting Claire",
            minute,
            "return document.getElementById('transcript').textContent.includes(\"Claire s'est interrompue\")",
        )
        .await;
    browser
        .wait_for(
            "the cut reply marked as interrupted",
            minute,
            "return document.querySelectorAll('#transcript li.agent.cut').length > 0",
        )
        .await;
    browser
        .wait_for(
            "the call to be launched",
            Duration::from_secs(90),
            "return document.getElementById('transcript').textContent.includes('Appel lancé')",
        )
        .await;
    browser
        .wait_for(
            "the web session to close after Claire's last words",
            minute,
            "return pc === null && document.getElementById('status').textContent.includes('Claire vous appelle')",
        )
        .await;
    browser.screenshot("after_call_launched").await;
    let seen = browser.eval("return window.seen").await;
    if seen["agent"] != true || seen["visitor"] != true || seen["level"].as_f64().unwrap_or(0.0) < 0.05 {
        browser
            .fail(&format!("live feedback missing (« Claire parle », « vous parlez », micro level): {seen}"))
            .await;
    }
    let state = browser.eval("return document.getElementById('connection-state').textContent").await;
    assert_eq!(state, "fermée", "the page shows the closed connection");
    assert_closed(&browser).await;

    // The callback: placed by the Twilio simulator, streamed to the gateway, relayed to the
    // OpenAI simulator and back (the callee heard the phone agent), completed.
    let Ok(calls) = tokio::time::timeout(minute, w.twilio.wait_for_calls(1)).await else {
        browser.fail("no call reached the Twilio simulator").await;
    };
    let sid = calls[0].sid.clone();
    let Ok(done) = tokio::time::timeout(minute, w.twilio.wait_call_finished(&sid)).await else {
        browser.fail(&format!("the call did not finish; gateway log:\n{}", w.gateway().log())).await;
    };
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    assert_eq!(done.to, "+33612345678");
    let report = &done.caller_reports[0];
    assert!(report.handshake_failure.is_none(), "{report:?}\n{}", w.gateway().log());
    assert!(report.url.starts_with(&format!("wss://{}/api/twilio/media-stream/", w.gateway().domain)));
    assert!(
        report.first_agent_audio.is_some() && report.audio_received_bytes > 0,
        "the callee heard nothing from the agent: {report:?}\n{}",
        w.gateway().log()
    );
    // The page follows the call from the control plane (the signed callbacks) to its end.
    let progress = browser
        .wait_for(
            "the call's progress to reach its end",
            minute,
            "const p = document.getElementById('call-progress'); \
             return !p.hidden && p.dataset.stage === 'ended' ? p.textContent : null;",
        )
        .await;
    assert_eq!(progress, "Appel terminé. Merci d'avoir parlé avec Claire !");
    let stages = browser.eval("return window.stages").await;
    assert_eq!(stages[0], "placing", "{stages}");
    assert_eq!(stages.as_array().and_then(|s| s.last()), Some(&serde_json::json!("ended")), "{stages}");
    let csp = browser.csp_violations().await;
    assert!(csp.is_empty(), "Content-Security-Policy violations: {csp:?}");
    // The phone call's session at the OpenAI simulator: opened by the gateway over WebSocket on
    // the same engine, with the phone agent's instructions built from the redeemed lead and
    // summary (in session.update on Realtime, session.start on GPT-Live).
    let phone = w.openai.sessions().into_iter().find(|s| s.call_id.is_none()).expect("the gateway's session");
    assert_eq!(phone.live.is_some(), engine == Engine::Live, "{phone:?}");
    let configured = if engine == Engine::Live { "session.start" } else { "session.update" };
    let instructions: String = phone
        .received_of(configured)
        .iter()
        .filter_map(|e| e["session"]["instructions"].as_str().map(str::to_owned))
        .collect();
    assert!(instructions.contains("Claire") && instructions.contains("rappelée"), "{instructions}");
    assert!(phone.appends > 0 && phone.audio_deltas_sent > 0, "{phone:?}");

    // The web conversation went with the call: stored on it (the record's web part, as the
    // page's transcript showed it) and, on GPT-Live, the phone session's starting history.
    use callway_control::record::{Numbers, read};
    let store = &w.cp.app.storage.store;
    let leads = read::leads(store, 1, Numbers::Masked).await.unwrap();
    let lead = read::lead(store, leads[0].id, Numbers::Masked).await.unwrap().unwrap();
    let call = read::call(store, lead.calls[0].id, Numbers::Masked).await.unwrap().unwrap();
    let web: Vec<(&str, &str)> = call
        .dialogue
        .iter()
        .filter(|l| l.part == "web" && l.speaker != "summary")
        .map(|l| (l.speaker, l.text.as_str()))
        .collect();
    assert!(
        web.iter().any(|(who, _)| *who == "agent") && web.iter().any(|(who, _)| *who == "caller"),
        "both sides of the web conversation: {:?}",
        call.dialogue
    );
    if engine == Engine::Live {
        let start = &phone.received_of("session.start")[0];
        let history: Vec<(&str, &str)> = start["session"]["input"]
            .as_array()
            .expect("session.start carries the web conversation as input")
            .iter()
            .map(|m| {
                let who = if m["role"] == "user" { "caller" } else { "agent" };
                (who, m["content"][0]["text"].as_str().unwrap())
            })
            .collect();
        assert_eq!(history, web, "the phone session starts from the web conversation");
    }

    // What the OpenAI simulator saw of the web session: one WebRTC call, Opus both ways, the
    // interruption cleared on the server, both tool results, and the session ended by the page.
    wait_session_ended(&w, &browser).await;
    let rec = w.openai.session(0).unwrap();
    assert!(rec.call_id.is_some(), "a WebRTC call");
    assert!(rec.media_frames_in > 100 && rec.media_frames_out > 100, "{rec:?}");
    let results_in = match engine {
        Engine::Realtime => {
            assert!(!rec.sent_of("output_audio_buffer.cleared").is_empty());
            assert!(!rec.sent_of("conversation.item.truncated").is_empty());
            "conversation.item.create"
        }
        Engine::Live => {
            // The control plane created it (the page never held a key), on the Live model.
            assert_eq!(rec.auth, callway_sim_openai::Auth::ApiKey);
            assert_eq!(rec.model, "gpt-live-1.1");
            let live = rec.live.clone().expect("a GPT-Live session");
            assert!(live.started, "{live:?}");
            assert_eq!(
                live.closed_reason.as_deref(),
                Some("close_requested"),
                "the page said goodbye: {live:?}"
            );
            assert!(live.client_schema_violations.is_empty(), "{live:?}");
            // The page sent only what its channel allows, and saw only what it may see: the
            // rest of the Responses stream and the delegation notices were held back.
            let allowed = callway_control::openai::LIVE_PAGE_CLIENT_EVENTS;
            assert!(rec.received.iter().all(|e| allowed.contains(&e.kind.as_str())), "{:?}", rec.received);
            assert!(rec.sent_of("error").is_empty(), "{:?}", rec.sent_of("error"));
            let seen = [
                "session.started",
                "session.output_transcript.delta",
                "session.input_transcript.delta",
                "response.event",
                "session.closed",
            ];
            assert!(rec.sent.iter().all(|e| seen.contains(&e.kind.as_str())), "{:?}", rec.sent_kinds());
            assert!(
                rec.sent_of("response.event")
                    .iter()
                    .all(|e| e["event"]["type"] == "response.output_item.done")
            );
            assert!(rec.withheld > 0, "the channel filter held nothing back");
            assert_eq!(rec.received_of("session.commentary.append").len(), 1, "the greeting");
            "response.item.create"
        }
    };
    let outputs: Vec<String> = rec
        .received_of(results_in)
        .iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .map(|e| e["item"]["output"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(outputs.iter().all(|o| !o.contains("\"code\"")), "tool refusals: {outputs:?}");
    assert!(w.openai.schema_violations().is_empty(), "{:?}", w.openai.schema_violations());
    assert!(received.as_u64().unwrap_or(0) > 8000);
    browser.quit().await;
}

/// Waits (bounded) until the OpenAI simulator has seen the page's WebRTC session end.
async fn wait_session_ended(w: &common::world::World, browser: &Browser) {
    let ended = w.openai.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some()));
    if tokio::time::timeout(Duration::from_secs(60), ended).await.is_err() {
        browser.fail("the page did not end the WebRTC session").await;
    }
}

/// The web session's parts kept in `window.parts` are closed: the peer connection, the data
/// channel, the microphone and every sent track; the page is back at its start.
async fn assert_closed(browser: &Browser) {
    let closed = browser
        .wait_for(
            "the web session's parts to be closed",
            Duration::from_secs(30),
            "const p = window.parts; \
             const tracks = p.mic.getTracks().concat(p.pc.getSenders().map(s => s.track).filter(t => t)); \
             const done = p.pc.connectionState === 'closed' && p.pc.signalingState === 'closed' \
               && p.channel.readyState === 'closed' && tracks.every(t => t.readyState === 'ended'); \
             return done ? { pc: p.pc.connectionState, channel: p.channel.readyState, tracks: tracks.length } : null;",
        )
        .await;
    assert!(closed["tracks"].as_u64().unwrap_or(0) >= 1, "{closed}");
    let page = browser
        .eval(
            "return { pc: pc === null, channel: channel === null, \
               start: !document.getElementById('start').disabled, \
               startLabel: document.getElementById('start').textContent, \
               stop: document.getElementById('stop').disabled, \
               agent: document.getElementById('agent-speaking').hidden };",
        )
        .await;
    let want = serde_json::json!({"pc": true, "channel": true, "start": true,
        "startLabel": "Démarrer la conversation", "stop": true, "agent": true});
    if page != want {
        browser.fail(&format!("the page is not back at its start: {page}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminer_closes_the_conversation_cleanly_from_the_keyboard() {
    let _watchdog = common::browser::Watchdog::new("the « Terminer » test", 300);
    // Claire speaks long enough to be cut by « Terminer ».
    let openai = SimConfig {
        script: Script::replies([Reply::tone(440.0, 20_000, "Bonjour, je suis Claire.")]),
        ttfb: Duration::from_millis(100),
        ..SimConfig::default()
    };
    let w = world_with(openai, &[], |_| {}).await;
    // A silent microphone: the visitor does not interrupt her.
    let dir = tempfile::tempdir().unwrap();
    let mic = dir.path().join("silence.wav");
    std::fs::write(&mic, wav_bytes(&vec![0i16; 16_000 * 2], 16_000)).unwrap();
    let browser = Browser::start("terminer", Some(&mic)).await;
    browser.goto(&w.cp.url("/")).await;
    browser.click("#start").await;
    let minute = Duration::from_secs(60);
    browser
        .wait_for(
            "the data channel",
            minute,
            "return document.getElementById('status').textContent.includes('En conversation avec Claire') \
               && pc && pc.connectionState === 'connected'",
        )
        .await;
    browser.eval("window.parts = { pc, channel, mic: micStream }; return true;").await;
    browser
        .wait_for("Claire speaking", minute, "return !document.getElementById('agent-speaking').hidden")
        .await;

    // « Terminer » with the keyboard: Enter on the focused button.
    browser.press("#stop", "\u{E007}").await;
    assert_closed(&browser).await;
    let after = browser
        .eval(
            "return { status: document.getElementById('status').textContent, \
               focus: document.activeElement && document.activeElement.id, \
               state: document.getElementById('connection-state').textContent };",
        )
        .await;
    assert!(after["status"].as_str().unwrap_or_default().starts_with("Conversation terminée"), "{after}");
    assert_eq!(after["focus"], "start", "the focus goes back to the start button: {after}");
    assert_eq!(after["state"], "fermée", "{after}");
    // The simulator saw the session end.
    wait_session_ended(&w, &browser).await;
    assert!(w.twilio.calls().is_empty(), "no call placed");

    // No Content-Security-Policy violation in the whole conversation; and the check does see
    // one: an inline script added now is refused and reported.
    let csp = browser.csp_violations().await;
    assert!(csp.is_empty(), "Content-Security-Policy violations: {csp:?}");
    browser
        .eval(
            "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; \
             document.body.appendChild(s); return true;",
        )
        .await;
    assert_eq!(
        browser.eval("return window.inlineRan === true").await,
        false,
        "the policy refuses inline scripts"
    );
    // The console entry may come a moment after the refusal: wait for it (bounded).
    let mut reported = Vec::new();
    for _ in 0..150 {
        reported = browser.csp_violations().await;
        if !reported.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!reported.is_empty(), "a refused inline script is reported in the console");
    browser.quit().await;
}

/// A fresh page with the form filled for Zoé Durand at `phone`, consent given.
async fn type_lead(browser: &Browser, page: &str, phone: &str) {
    browser.goto(page).await;
    browser.fill("#first-name", "Zoé").await;
    browser.fill("#last-name", "Durand").await;
    browser.fill("#phone", phone).await;
    browser.click("#consent").await;
}

/// The form's answer once it has one: (class, text, the field marked invalid).
async fn submit_and_read(browser: &Browser) -> serde_json::Value {
    browser.click("#form-submit").await;
    browser
        .wait_for(
            "the form's answer",
            Duration::from_secs(30),
            "const r = document.getElementById('form-result'); \
             if (!r.className) return null; \
             const bad = document.querySelector('[aria-invalid=true]'); \
             return { kind: r.className, text: r.textContent, field: bad ? bad.id : null };",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_form_masks_the_number_and_shows_the_servers_answers_inline() {
    let _watchdog = common::browser::Watchdog::new("the form test", 300);
    let w = world_with(SimConfig::default(), &[], |_| {}).await;
    let browser = Browser::start("typed_form", None).await;
    let page = w.cp.url("/");

    // Valid: masked as typed, its E.164 form previewed, the lead saved and the call placed.
    browser.goto(&page).await;
    browser.fill("#first-name", "Zoé").await;
    browser.fill("#last-name", "Durand").await;
    browser.fill("#phone", "0612345678").await;
    let shown = browser.eval("return [document.getElementById('phone').value, document.getElementById('phone-hint').textContent]").await;
    assert_eq!(shown[0], "06 12 34 56 78", "{shown}");
    assert!(shown[1].as_str().unwrap_or_default().contains("+33612345678"), "{shown}");
    // Without consent the server refuses, next to the checkbox.
    let r = submit_and_read(&browser).await;
    if r["kind"] != "err" || r["field"] != "consent" {
        browser.fail(&format!("no consent, expected a refusal on the checkbox: {r}")).await;
    }
    browser.click("#consent").await;
    let r = submit_and_read(&browser).await;
    if r["kind"] != "ok" || !r["text"].as_str().unwrap_or_default().contains("+33612345678") {
        browser.fail(&format!("a valid number, expected the call: {r}")).await;
    }
    let calls =
        tokio::time::timeout(Duration::from_secs(30), w.twilio.wait_for_calls(1)).await.expect("the call");
    assert_eq!(calls[0].to, "+33612345678");
    // The form's call is followed too, to its end.
    browser
        .wait_for(
            "the form's call to be followed to its end",
            Duration::from_secs(60),
            "const p = document.getElementById('call-progress'); \
             return !p.hidden && p.dataset.stage === 'ended' && p.textContent.startsWith('Appel terminé');",
        )
        .await;

    // Invalid: the control plane's message, the phone field marked.
    type_lead(&browser, &page, "06 12 34 56").await;
    let r = submit_and_read(&browser).await;
    if r["kind"] != "err"
        || r["field"] != "phone"
        || !r["text"].as_str().unwrap_or_default().contains("numéro")
    {
        browser.fail(&format!("an invalid number, expected the refusal on the phone field: {r}")).await;
    }

    // Premium rate: saved, but never called; said inline.
    type_lead(&browser, &page, "0899 12 34 56").await;
    let r = submit_and_read(&browser).await;
    if r["kind"] != "err"
        || r["field"] != "phone"
        || !r["text"].as_str().unwrap_or_default().contains("surtaxé")
    {
        browser.fail(&format!("a premium-rate number, expected the refusal on the phone field: {r}")).await;
    }
    assert_eq!(w.twilio.calls().len(), 1, "no call to a premium-rate number");
    let csp = browser.csp_violations().await;
    assert!(csp.is_empty(), "Content-Security-Policy violations: {csp:?}");
    browser.quit().await;
}
