//! A stand-in gateway for trying the caller by hand (not the Callway gateway): accepts Media
//! Streams WebSockets, checks `x-twilio-signature` with the auth token, and answers the caller
//! with its own voice (frames louder than silence) one second late, as agent audio, with a mark
//! every half second of it; a `#` key press sends `clear`. It prints what it sees.
//!
//! ```sh
//! cargo run -p callway-sim-twilio --example echo_gateway -- 127.0.0.1:8090 demo-token
//! callway-sim twilio-call --url ws://127.0.0.1:8090/media-stream/t1 --auth-token demo-token
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use callway_sim_twilio::audio;

use contract::twilio_signature::TwilioSigner;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let token = args.next().unwrap_or_else(|| "demo-token".into());
    let listener = TcpListener::bind(&listen).await?;
    println!("echo gateway on ws://{listen}/… (auth token {token})");
    loop {
        let (tcp, peer) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (token, listen) = (token.clone(), listen.clone());
        tokio::spawn(async move {
            let verdict = Arc::new(Mutex::new(String::new()));
            let v = verdict.clone();
            // The error type is tungstenite's (an HTTP response), not ours to shrink.
            #[allow(clippy::result_large_err)]
            let callback = move |req: &Request, resp: Response| {
                let url = format!("ws://{listen}{}", req.uri().path());
                let sig = req
                    .headers()
                    .get("x-twilio-signature")
                    .map(|h| h.as_bytes().to_vec())
                    .unwrap_or_default();
                let check = TwilioSigner::new(token.as_bytes()).verify_upgrade(&url, &sig);
                *v.lock().unwrap() = format!("{url}: signature {check:?}");
                Ok(resp)
            };
            let mut ws = match tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: handshake failed: {e}"),
            };
            println!("{peer}: {}", verdict.lock().unwrap());
            let mut stream_sid = String::new();
            let mut frames: u64 = 0;
            let mut echoed: u64 = 0;
            let mut marks = 0;
            let mut delay: VecDeque<(u64, Option<String>)> = VecDeque::new();
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                let mut out = Vec::new();
                match v["event"].as_str() {
                    Some("start") => {
                        stream_sid = v["streamSid"].as_str().unwrap_or_default().to_owned();
                        println!(
                            "{peer}: start {} call {} params {}",
                            stream_sid, v["start"]["callSid"], v["start"]["customParameters"]
                        );
                    }
                    Some("media") => {
                        frames += 1;
                        let payload = v["media"]["payload"].as_str().unwrap_or_default().to_owned();
                        let audio = STANDARD.decode(&payload).unwrap_or_default();
                        delay.push_back((frames, audio::is_voiced(&audio).then_some(payload)));
                        // One second (50 frames) late, voice only.
                        while delay.front().is_some_and(|(n, _)| *n + 50 <= frames) {
                            let Some((_, Some(payload))) = delay.pop_front() else { continue };
                            echoed += 1;
                            out.push(
                                json!({"event":"media","streamSid":stream_sid,"media":{"payload":payload}}),
                            );
                            if echoed.is_multiple_of(25) {
                                marks += 1;
                                out.push(json!({"event":"mark","streamSid":stream_sid,"mark":{"name":format!("echo-{marks}")}}));
                            }
                        }
                    }
                    Some("mark") => println!("{peer}: mark {} came back", v["mark"]["name"]),
                    Some("dtmf") => {
                        println!("{peer}: dtmf {}", v["dtmf"]["digit"]);
                        if v["dtmf"]["digit"] == "#" {
                            out.push(json!({"event":"clear","streamSid":stream_sid}));
                        }
                    }
                    Some("stop") => println!("{peer}: stop after {frames} media frames, {echoed} echoed"),
                    Some(other) => println!("{peer}: {other}"),
                    None => {}
                }
                for o in out {
                    if ws.send(Message::text(o.to_string())).await.is_err() {
                        return;
                    }
                }
            }
            println!("{peer}: closed");
        });
    }
}
