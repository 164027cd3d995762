//! A browser-like WebRTC peer for the simulator's WebRTC tests (`webrtc.rs` on Realtime,
//! `live_webrtc.rs` on GPT-Live): str0m with an audio transceiver and the `oai-events` data
//! channel, Opus both ways, every event received checked against the server schema of the
//! protocol under test; and the plain HTTP/1.1 requests that start a call.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use opusic_c::{Application, Channels, Decoder, Encoder, SampleRate};
use serde_json::Value;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// Samples per 20 ms at 48 kHz.
pub const FRAME: usize = 960;

/// RMS (full scale 1.0) above which a received frame is "the agent speaking".
pub const LOUD: f32 = 0.05;

pub struct Reply201 {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply201 {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply201 {
    request(addr, "POST", path, headers, body).await
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply201 {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply201 { status, headers, body }
}

pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// A browser-like peer: an audio transceiver and the `oai-events` channel, driven on the test's
/// tokio runtime. The microphone plays `mic` (48 kHz samples) then silence.
pub struct Peer {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub mid: Mid,
    pub channel: ChannelId,
    pub pending: Option<SdpPendingOffer>,
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub mic: std::collections::VecDeque<f32>,
    pub rtp_ticks: u64,
    pub connected: bool,
    pub open: bool,
    /// Events received on the data channel, each checked against the server schema.
    pub events: Vec<Value>,
    /// RMS of each received Opus frame, with the number of events received before it.
    pub heard: Vec<(usize, f32)>,
    /// The server schema of the protocol under test.
    pub validate: fn(&Value) -> Result<(), String>,
}

impl Peer {
    /// A peer whose received events are checked with `validate`, and its offer.
    pub async fn new(validate: fn(&Value) -> Result<(), String>) -> (Self, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .enable_opus(true, false)
            .build(std::time::Instant::now());
        rtc.add_local_candidate(Candidate::host(socket.local_addr().unwrap(), "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let channel = api.add_channel("oai-events".into());
        let (offer, pending) = api.apply().unwrap();
        let peer = Self {
            rtc,
            socket,
            mid,
            channel,
            pending: Some(pending),
            encoder: Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip).unwrap(),
            decoder: Decoder::new(Channels::Mono, SampleRate::Hz48000).unwrap(),
            mic: Default::default(),
            rtp_ticks: 0,
            connected: false,
            open: false,
            events: Vec::new(),
            heard: Vec::new(),
            validate,
        };
        (peer, offer.to_sdp_string())
    }

    pub fn accept(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("the answer parses");
        self.rtc.sdp_api().accept_answer(self.pending.take().unwrap(), answer).expect("answer accepted");
    }

    pub fn send(&mut self, v: Value) {
        let text = v.to_string();
        let mut ch = self.rtc.channel(self.channel).expect("channel open");
        assert!(ch.write(false, text.as_bytes()).unwrap(), "channel buffer full");
    }

    pub fn speak(&mut self, hz: f32, ms: u32, amplitude: f32) {
        let n = 48 * ms as usize;
        self.mic.extend(
            (0..n).map(|i| amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / 48_000.0).sin()),
        );
    }

    pub fn kinds(&self) -> Vec<&str> {
        self.events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.events.iter().filter(|e| e["type"] == kind).count()
    }

    pub fn first(&self, kind: &str) -> Option<(usize, &Value)> {
        self.events.iter().enumerate().find(|(_, e)| e["type"] == kind)
    }

    pub fn mic_frame(&mut self) {
        let frame: Vec<f32> = (0..FRAME).map(|_| self.mic.pop_front().unwrap_or(0.0)).collect();
        let mut packet = [0u8; 1500];
        let n = self.encoder.encode_float_to_slice(&frame, &mut packet).unwrap();
        let time = MediaTime::new(self.rtp_ticks, Frequency::FORTY_EIGHT_KHZ);
        self.rtp_ticks += FRAME as u64;
        let Some(writer) = self.rtc.writer(self.mid) else { return };
        let pt = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).unwrap().pt();
        writer.write(pt, std::time::Instant::now(), time, packet[..n].to_vec()).unwrap();
    }

    pub fn on_event(&mut self, e: Event) {
        match e {
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => {
                self.connected = true;
            }
            Event::ChannelOpen(id, label) if id == self.channel => {
                assert_eq!(label, "oai-events");
                self.open = true;
            }
            Event::ChannelData(d) if d.id == self.channel => {
                assert!(!d.binary, "the API speaks text");
                let v: Value = serde_json::from_slice(&d.data).unwrap();
                if let Err(e) = (self.validate)(&v) {
                    panic!("event outside the server schema: {e}\n{v}");
                }
                self.events.push(v);
            }
            Event::MediaData(m) if m.mid == self.mid => {
                let mut pcm = [0f32; 5760];
                let n = self.decoder.decode_float_to_slice(&m.data, &mut pcm, false).unwrap();
                self.heard.push((self.events.len(), rms(&pcm[..n])));
            }
            _ => {}
        }
    }

    /// Drives the peer (sending a microphone frame every 20 ms once connected) until `done`
    /// holds; panics after `limit` of wall-clock time.
    pub async fn until(&mut self, limit: Duration, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        let mut buf = vec![0u8; 2048];
        loop {
            let due = loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break Instant::from_std(t),
                    Output::Transmit(t) => {
                        self.socket.send_to(&t.contents, t.destination).await.unwrap();
                    }
                    Output::Event(e) => self.on_event(e),
                }
            };
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; events: {:?}", self.kinds());
            let input = tokio::select! {
                got = self.socket.recv_from(&mut buf) => {
                    let (n, source) = got.unwrap();
                    let destination = self.socket.local_addr().unwrap();
                    Input::Receive(std::time::Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination, contents: buf[..n].try_into().unwrap() })
                }
                () = tokio::time::sleep_until(due) => Input::Timeout(std::time::Instant::now()),
                _ = ticker.tick() => {
                    if self.connected {
                        self.mic_frame();
                    }
                    Input::Timeout(std::time::Instant::now())
                }
                () = tokio::time::sleep_until(deadline) => Input::Timeout(std::time::Instant::now()),
            };
            self.rtc.handle_input(input).unwrap();
        }
    }
}
