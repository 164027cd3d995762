//! One event loop of the harness: a single thread, one `epoll` (mio), one periodic `timerfd`,
//! and every socket of its share of the run — its callers, and the OpenAI stand-in sessions
//! and control-plane connections the gateway opens to it.
//!
//! Each turn: `epoll_wait`; then, in order of the events, the timer (every tick due since the
//! last turn: calls to start, media of the phase, mark echoes due, hang-up, each stamped with
//! its scheduled time), callers' reads (round trips recorded as frames come back), accepts, and
//! stand-in/control reads (answers queued); finally one `write` per socket with something
//! queued. No timer per call or per frame; no task or wake-up per socket beyond the readiness
//! event itself.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use callway_gateway::core::buf::RecvBuf;
use contract::stream_token::StreamTokenVerifier;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

use super::caller::{CallEnv, Caller, State as CallState, Wheels};
use super::conn::{Flushed, Outbox, ReadOutcome, Sock};
use super::frame::FrameTemplate;
use super::options::Mode;
use super::recorder::{Progress, Recorder, RunClock};
use super::setup::CallIdentity;
use super::soak::SoakShared;
use super::soak::checks::Checks;
use super::soak::counts::SoakCounts;
use super::soak::driver::{Driver, SoakPlan};
use super::soak::ledger::Fault;
use super::{control_stub, openai_stub};

const TIMER: Token = Token(0);
const OPENAI_LISTENER: Token = Token(1);
const CONTROL_LISTENER: Token = Token(2);
const CALLER_BASE: usize = 16;
const STUB_BASE: usize = 1 << 40;

/// What one loop runs.
pub struct ShardPlan {
    /// Relay or echo floor.
    pub mode: Mode,
    /// Where the callers connect.
    pub target: SocketAddr,
    /// `Host` of the upgrades (the stream domain).
    pub host: String,
    /// Clock, schedule and timeline of the run.
    pub clock: RunClock,
    /// The frame template.
    pub template: Arc<FrameTemplate>,
    /// Every call's identity, by global index.
    pub identities: Arc<Vec<CallIdentity>>,
    /// Global indices of this loop's calls, ascending.
    pub calls: Vec<u32>,
    /// This loop's OpenAI stand-in listener.
    pub openai_listener: Option<std::net::TcpListener>,
    /// This loop's stub control-plane listener.
    pub control_listener: Option<std::net::TcpListener>,
    /// Reads call ids out of stream tokens (for the stub's call contexts).
    pub verifier: Option<Arc<StreamTokenVerifier>>,
    /// Counters for the monitor thread.
    pub progress: Arc<Progress>,
    /// Set by the monitor to end the run early (the process under test died).
    pub abort: Arc<AtomicBool>,
    /// Seeds the callers' masking keys.
    pub seed: u64,
    /// A soak: `calls` are the first of `identities`, kept concurrent as calls end (one loop).
    pub soak: Option<SoakPlan>,
    /// TLS for the callers' connections (Twilio's leg), when it is `wss://`.
    pub client_tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS for the OpenAI stand-in's connections, when the gateway reaches it over `wss://`.
    pub server_tls: Option<Arc<rustls::ServerConfig>>,
}

/// A soak stops starting new calls this long before media stops (they would still be
/// connecting when the run ends).
const SOAK_LAST_START_NS: u64 = 5_000_000_000;
/// A soak's schedule is checked every this many nanoseconds.
const SOAK_PERIOD_NS: u64 = 10_000_000;

/// What a loop measured.
#[derive(Debug)]
pub struct ShardOutcome {
    /// Latencies, counts, failures.
    pub rec: Recorder,
    /// Turns of the loop (`epoll_wait` calls).
    pub turns: u64,
}

enum StubKind {
    OpenAi(Box<openai_stub::Session>),
    Control,
}

struct StubConn {
    stream: Sock,
    recv: RecvBuf,
    out: Outbox,
    kind: StubKind,
    dirty: bool,
}

/// The parts of the loop a caller may touch.
struct Parts {
    clock: RunClock,
    mode: Mode,
    template: Arc<FrameTemplate>,
    rec: Recorder,
    progress: Arc<Progress>,
    wheels: Wheels,
    tick: u64,
    soak: Option<SoakShared>,
}

impl Parts {
    fn env(&mut self) -> CallEnv<'_> {
        CallEnv {
            clock: &self.clock,
            tick: self.tick,
            mode: self.mode,
            template: &self.template,
            rec: &mut self.rec,
            progress: &self.progress,
            wheels: &mut self.wheels,
            soak: self.soak.as_mut(),
        }
    }
}

struct Loop {
    poll: Poll,
    target: SocketAddr,
    host: String,
    identities: Arc<Vec<CallIdentity>>,
    callers: Vec<Caller>,
    stubs: Vec<Option<StubConn>>,
    free_stubs: Vec<usize>,
    openai_listener: Option<TcpListener>,
    control_listener: Option<TcpListener>,
    verifier: Option<Arc<StreamTokenVerifier>>,
    parts: Parts,
    next_tick: u64,
    next_start: usize,
    hung_up: bool,
    abandoned: bool,
    second: u64,
    all_done_at: Option<u64>,
    sessions_closed_at: Option<u64>,
    seed: u64,
    soak: Option<Driver>,
    client_tls: Option<Arc<rustls::ClientConfig>>,
    server_tls: Option<Arc<rustls::ServerConfig>>,
}

fn listener(l: Option<std::net::TcpListener>, poll: &Poll, token: Token) -> io::Result<Option<TcpListener>> {
    let Some(l) = l else { return Ok(None) };
    l.set_nonblocking(true)?;
    let mut l = TcpListener::from_std(l);
    poll.registry().register(&mut l, token, Interest::READABLE)?;
    Ok(Some(l))
}

/// Runs one loop to the end of the run (on the calling thread).
pub fn run_shard(plan: ShardPlan) -> io::Result<ShardOutcome> {
    let poll = Poll::new()?;
    let schedule = plan.clock.schedule;
    let timer = rustix::time::timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    let first = plan.clock.origin.saturating_duration_since(Instant::now()).max(Duration::from_micros(1));
    let spec = |d: Duration| Timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ };
    rustix::time::timerfd_settime(
        &timer,
        TimerfdTimerFlags::empty(),
        &Itimerspec { it_interval: spec(Duration::from_nanos(schedule.tick_ns)), it_value: spec(first) },
    )?;
    poll.registry().register(&mut SourceFd(&timer.as_raw_fd()), TIMER, Interest::READABLE)?;
    let callers = plan
        .calls
        .iter()
        .enumerate()
        .map(|(local, &g)| Caller::new(g, local as u32, &plan.identities[g as usize], plan.seed))
        .collect();
    let timeline = plan.clock.timeline;
    let driver = plan.soak.as_ref().map(|p| {
        let first_drop = timeline.ramp_end + p.args.drop_every.as_nanos() as u64;
        Driver::new(p, plan.calls.len(), plan.identities.len() as u32, first_drop)
    });
    let shared = plan
        .soak
        .as_ref()
        .map(|_| SoakShared { checks: Checks::new(plan.identities.len()), ..SoakShared::default() });
    let mut l = Loop {
        openai_listener: listener(plan.openai_listener, &poll, OPENAI_LISTENER)?,
        control_listener: listener(plan.control_listener, &poll, CONTROL_LISTENER)?,
        poll,
        target: plan.target,
        host: plan.host,
        identities: plan.identities,
        callers,
        stubs: Vec::new(),
        free_stubs: Vec::new(),
        verifier: plan.verifier,
        parts: Parts {
            clock: plan.clock,
            mode: plan.mode,
            template: plan.template,
            rec: Recorder::default(),
            progress: plan.progress,
            wheels: Wheels::new(schedule.frame_ticks),
            tick: 0,
            soak: shared,
        },
        next_tick: 0,
        next_start: 0,
        hung_up: false,
        abandoned: false,
        second: 0,
        all_done_at: None,
        sessions_closed_at: None,
        seed: plan.seed,
        soak: driver,
        client_tls: plan.client_tls,
        server_tls: plan.server_tls,
    };
    let mut events = Events::with_capacity(1024);
    let mut turns = 0u64;
    let mut tick_buf = [0u8; 8];
    loop {
        let waited = Instant::now();
        match l.poll.poll(&mut events, Some(Duration::from_millis(50))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        Progress::add(&l.parts.progress.idle_ns, waited.elapsed().as_nanos() as u64);
        Progress::add(&l.parts.progress.turns, 1);
        turns += 1;
        for ev in &events {
            match ev.token() {
                TIMER => {
                    let _ = rustix::io::read(&timer, &mut tick_buf);
                    l.run_due_ticks();
                }
                OPENAI_LISTENER => l.accept(true),
                CONTROL_LISTENER => l.accept(false),
                Token(t) if (CALLER_BASE..STUB_BASE).contains(&t) => {
                    let i = t - CALLER_BASE;
                    let (readable, writable) =
                        (ev.is_readable() || ev.is_read_closed() || ev.is_error(), ev.is_writable());
                    let Loop { callers, parts, identities, host, .. } = &mut l;
                    if let Some(c) = callers.get_mut(i) {
                        let g = c.global() as usize;
                        c.on_event(readable, writable, &mut parts.env(), &identities[g], host);
                    }
                }
                Token(t) => {
                    l.on_stub(t - STUB_BASE, ev.is_readable() || ev.is_read_closed(), ev.is_writable())
                }
            }
        }
        // Catch up ticks even if the timer event was not in this batch (a long turn).
        l.run_due_ticks();
        l.flush_dirty();
        if l.finished() || plan.abort.load(Ordering::Relaxed) {
            break;
        }
    }
    let Loop { parts, stubs, .. } = l;
    let mut rec = parts.rec;
    rec.counts.openai_sessions_left = stubs
        .iter()
        .flatten()
        .filter(|s| matches!(&s.kind, StubKind::OpenAi(sess) if sess.state == openai_stub::State::Open))
        .count() as u64;
    if let Some(soak) = parts.soak {
        rec.soak = SoakCounts { checks: soak.checks.counts, ..soak.counts };
    }
    let cut = rec.soak.cut_by_hangup + rec.soak.cut_by_openai_drop;
    rec.counts.lost = rec.counts.sent.saturating_sub(rec.counts.received + cut);
    Ok(ShardOutcome { rec, turns })
}

impl Loop {
    fn run_due_ticks(&mut self) {
        let now = self.parts.clock.now_ns();
        let cur = self.parts.clock.schedule.tick_of(now);
        if now < self.parts.clock.schedule.tick_at(self.next_tick) {
            return;
        }
        while self.next_tick <= cur {
            let t = self.next_tick;
            self.run_tick(t, now);
            self.next_tick += 1;
        }
    }

    fn run_tick(&mut self, t: u64, now: u64) {
        let s = self.parts.clock.schedule;
        let tl = self.parts.clock.timeline;
        let at = s.tick_at(t);
        self.parts.tick = t;
        self.parts.rec.tick_lateness(&tl, at, now);
        let sec = at / 1_000_000_000;
        if sec != self.second {
            self.parts.rec.publish_second(self.second as usize, &self.parts.progress);
            self.second = sec;
        }
        if self.soak.is_some() && at.is_multiple_of(SOAK_PERIOD_NS) {
            self.soak_tick(at);
        }
        let Loop { callers, parts, identities, poll, target, client_tls, .. } = self;
        // Calls whose start time has come.
        if at < tl.media_stop {
            while self.next_start < callers.len() && s.start_tick(callers[self.next_start].global()) <= t {
                let i = self.next_start;
                let (registry, token) = (poll.registry(), Token(CALLER_BASE + i));
                callers[i].connect(*target, client_tls.as_ref(), registry, token, &mut parts.env());
                if let (Some(d), Some(shared)) = (self.soak.as_mut(), parts.soak.as_mut()) {
                    d.started(i, callers[i].global(), at);
                    shared.counts.calls_started += 1;
                }
                self.next_start += 1;
            }
            // Media of this tick's phase.
            let phase = (t % s.frame_ticks) as usize;
            let mut list = std::mem::take(&mut parts.wheels.media[phase]);
            list.retain(|&l| callers[l as usize].in_media_wheel(t, phase as u64, &s));
            for &l in &list {
                callers[l as usize].send_media(t, &mut parts.env());
            }
            let added = std::mem::replace(&mut parts.wheels.media[phase], list);
            parts.wheels.media[phase].extend(added);
        }
        // Mark echoes due.
        let slot = (t as usize) % parts.wheels.marks.len();
        let due = std::mem::take(&mut parts.wheels.marks[slot]);
        for &l in &due {
            callers[l as usize].send_due(t, &mut parts.env());
        }
        let mut due = due;
        due.clear();
        let added = std::mem::replace(&mut parts.wheels.marks[slot], due);
        parts.wheels.marks[slot].extend(added);
        // Hang up once every frame came back, or at the drain deadline.
        if !self.hung_up && at >= tl.media_stop {
            let outstanding: u64 =
                callers.iter().filter(|c| c.state() == CallState::Streaming).map(Caller::outstanding).sum();
            if outstanding == 0 || at >= tl.drain_deadline {
                self.hung_up = true;
                self.next_start = callers.len();
                for c in callers.iter_mut() {
                    let g = c.global() as usize;
                    c.hang_up(&identities[g], &mut parts.env());
                }
            }
        }
        if !self.abandoned && at >= tl.close_deadline {
            self.abandoned = true;
            for c in callers.iter_mut() {
                c.abandon(&mut parts.env());
            }
        }
    }

    /// A soak's work, every 10 ms: hang-ups due, new calls in free slots, a drop wave when
    /// due, the stand-in sessions' scripted turns, overdue barge-in checks.
    fn soak_tick(&mut self, at: u64) {
        let tl = self.parts.clock.timeline;
        let Loop { callers, parts, identities, poll, target, soak, stubs, seed, client_tls, .. } = self;
        let Some(driver) = soak.as_mut() else { return };
        let mut drops = Vec::new();
        if at + SOAK_LAST_START_NS < tl.media_stop {
            for (i, caller) in callers.iter_mut().enumerate() {
                let state = caller.state();
                if state.is_done() {
                    match driver.take_global(i) {
                        Ok(g) => {
                            *caller = Caller::new(g, i as u32, &identities[g as usize], *seed);
                            let token = Token(CALLER_BASE + i);
                            caller.connect(
                                *target,
                                client_tls.as_ref(),
                                poll.registry(),
                                token,
                                &mut parts.env(),
                            );
                            driver.started(i, g, at);
                            if let Some(s) = parts.soak.as_mut() {
                                s.counts.calls_started += 1;
                            }
                        }
                        Err(true) => {
                            if let Some(s) = parts.soak.as_mut() {
                                s.counts.identities_exhausted += 1;
                            }
                        }
                        Err(false) => {}
                    }
                } else if driver.hang_up_due(i, at) {
                    if state == CallState::Streaming {
                        let g = caller.global() as usize;
                        caller.hang_up_early(&identities[g], &mut parts.env());
                    } else {
                        driver.postpone(i, at, 1_000_000_000);
                    }
                }
            }
            if driver.drop_wave_due(at) {
                for (slot, conn) in stubs.iter().enumerate() {
                    let Some(StubConn { kind: StubKind::OpenAi(sess), .. }) = conn else { continue };
                    let Some(call) = sess.script().and_then(|s| s.droppable(at)) else { continue };
                    if !driver.take_session() {
                        continue;
                    }
                    if let Some(i) = driver.slot_of(call).filter(|&i| callers[i].global() == call) {
                        callers[i].fault(Fault::OpenAiDrop, &parts.env());
                    }
                    if let Some(s) = parts.soak.as_mut() {
                        s.counts.openai_drops += 1;
                        s.checks.forget(call);
                    }
                    drops.push(slot);
                }
            }
        }
        if let Some(shared) = parts.soak.as_mut() {
            for conn in stubs.iter_mut().flatten() {
                if let StubKind::OpenAi(sess) = &mut conn.kind {
                    sess.on_tick(at, &mut conn.out, shared);
                    conn.dirty |= !conn.out.is_empty();
                }
            }
            shared.checks.sweep(at);
        }
        for slot in drops {
            // Abrupt: no close frame, and a reset rather than a FIN.
            if let Some(conn) = self.stubs[slot].as_ref() {
                let _ = socket2::SockRef::from(&*conn.stream).set_linger(Some(Duration::ZERO));
            }
            self.drop_stub(slot);
        }
    }

    fn flush_dirty(&mut self) {
        let Loop { callers, parts, .. } = self;
        let mut dirty = std::mem::take(&mut parts.wheels.dirty);
        for &l in &dirty {
            callers[l as usize].flush(&mut parts.env());
        }
        dirty.clear();
        let added = std::mem::replace(&mut parts.wheels.dirty, dirty);
        parts.wheels.dirty.extend(added);
        for i in 0..self.stubs.len() {
            if self.stubs[i].as_ref().is_some_and(|s| s.dirty) {
                self.flush_stub(i);
            }
        }
    }

    fn finished(&mut self) -> bool {
        if !self.callers.iter().all(|c| c.state().is_done()) {
            return false;
        }
        let now = self.parts.clock.now_ns();
        let done_at = *self.all_done_at.get_or_insert(now);
        let open = self
            .stubs
            .iter()
            .flatten()
            .any(|s| matches!(&s.kind, StubKind::OpenAi(x) if x.state == openai_stub::State::Open));
        if open {
            // The gateway closes its OpenAI sessions after the calls: wait for that (bounded).
            return now > done_at + 2_000_000_000;
        }
        // Then it posts the calls' last event batches: keep answering a little longer.
        let closed_at = *self.sessions_closed_at.get_or_insert(now);
        now > closed_at + 500_000_000
    }

    fn accept(&mut self, openai: bool) {
        loop {
            let l = if openai { self.openai_listener.as_ref() } else { self.control_listener.as_ref() };
            let Some(l) = l else { return };
            let mut stream = match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let _ = stream.set_nodelay(true);
            let slot = self.free_stubs.pop().unwrap_or_else(|| {
                self.stubs.push(None);
                self.stubs.len() - 1
            });
            if self
                .poll
                .registry()
                .register(&mut stream, Token(STUB_BASE + slot), Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                self.free_stubs.push(slot);
                continue;
            }
            let stream = match self.server_tls.as_ref().filter(|_| openai) {
                None => Sock::plain(stream),
                Some(config) => match rustls::ServerConnection::new(config.clone()) {
                    Ok(session) => Sock::tls(stream, session),
                    Err(_) => {
                        let _ = self.poll.registry().deregister(&mut stream);
                        self.free_stubs.push(slot);
                        continue;
                    }
                },
            };
            let (kind, cap) = if openai {
                let session = match self.soak.as_mut() {
                    Some(d) => openai_stub::Session::scripted(d.new_session(self.parts.clock.now_ns())),
                    None => openai_stub::Session::default(),
                };
                (StubKind::OpenAi(Box::new(session)), openai_stub::RECV)
            } else {
                (StubKind::Control, control_stub::RECV)
            };
            self.stubs[slot] = Some(StubConn {
                stream,
                recv: RecvBuf::with_capacity(cap),
                out: Outbox::default(),
                kind,
                dirty: false,
            });
            // Bytes may already be there (edge-triggered: no event for data that came first).
            self.on_stub(slot, true, false);
        }
    }

    fn on_stub(&mut self, slot: usize, readable: bool, writable: bool) {
        let Some(conn) = self.stubs.get_mut(slot).and_then(Option::as_mut) else { return };
        if writable && conn.stream.wants_flush(&conn.out) {
            conn.dirty = true;
        }
        if !readable {
            return;
        }
        let parts = &mut self.parts;
        let mut keep = true;
        loop {
            let outcome = match conn.stream.read_into(&mut conn.recv) {
                Ok(o) => o,
                Err(_) => {
                    keep = false;
                    break;
                }
            };
            let (processed, more) = match outcome {
                ReadOutcome::Eof | ReadOutcome::BufferFull => (true, false),
                ReadOutcome::Drained(0) => (false, false),
                ReadOutcome::Drained(_) => (true, false),
                ReadOutcome::More(_) => (true, true),
            };
            if processed {
                keep &= match &mut conn.kind {
                    StubKind::OpenAi(s) => {
                        let soak = parts.soak.as_mut();
                        s.process(&mut conn.recv, &mut conn.out, &mut parts.rec.counts, &parts.progress, soak)
                    }
                    StubKind::Control => control_stub::process(
                        &mut conn.recv,
                        &mut conn.out,
                        self.verifier.as_deref(),
                        &mut parts.rec.counts,
                    ),
                };
                conn.dirty |= !conn.out.is_empty();
            }
            if matches!(outcome, ReadOutcome::Eof | ReadOutcome::BufferFull) {
                keep = false;
            }
            if !more || !keep {
                break;
            }
        }
        if !keep {
            // Send what is queued (a close frame, a 400) before dropping.
            let _ = conn.stream.flush(&mut conn.out);
            self.drop_stub(slot);
        }
    }

    fn flush_stub(&mut self, slot: usize) {
        let Some(conn) = self.stubs.get_mut(slot).and_then(Option::as_mut) else { return };
        conn.dirty = false;
        let closing = matches!(&conn.kind, StubKind::OpenAi(s) if s.state == openai_stub::State::Closing);
        match conn.stream.flush(&mut conn.out) {
            Ok(Flushed::All) if closing => self.drop_stub(slot),
            Ok(_) => {}
            Err(_) => self.drop_stub(slot),
        }
    }

    fn drop_stub(&mut self, slot: usize) {
        if let Some(mut conn) = self.stubs.get_mut(slot).and_then(Option::take) {
            if let StubKind::OpenAi(s) = &mut conn.kind {
                s.gone(&self.parts.progress);
            }
            let _ = self.poll.registry().deregister(&mut *conn.stream);
            self.free_stubs.push(slot);
        }
    }
}
