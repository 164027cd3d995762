//! The io_uring engine of one worker: every call the worker accepted, relayed by one thread
//! around one ring.
//!
//! # One turn
//! 1. Calls marked dirty are driven ([`Engine::drive`]): received bytes into the [`Call`], due
//!    timers, its events ([`Driver`]), its output copied into each socket's send buffer, one
//!    send and one receive per socket queued as submissions. Nothing is written to the kernel yet.
//! 2. One `io_uring_enter` submits everything queued by every call and waits for completions
//!    or the earliest deadline (`EXT_ARG` timeout): **one system call per turn, whatever the
//!    number of calls and frames in it**. The wait asks for one completion more than the sends
//!    just submitted, so sends finishing at once (the usual case: the socket has room) do not
//!    end the wait by themselves.
//! 3. Completions mark their call dirty; commands from the worker's tokio thread (a new call,
//!    an OpenAI connection, a tool result, the drain) arrive on a channel and wake the ring
//!    through an eventfd read kept in flight.
//!
//! The ring is built with `SINGLE_ISSUER` and `DEFER_TASKRUN` where the kernel has them, so
//! completions are only processed when the engine enters the kernel anyway.
//!
//! # Calls and sockets
//! Calls live in a slab of [`Slot`]s, sockets in a slab of [`Leg`]s; `user_data` names a leg
//! and its generation ([`super::token`]), so a completion for a socket that was retired and
//! whose slot was reused is recognised. A retired socket (a reconnect, the call's end) is shut
//! down and freed once its last operation completed; its buffers live until then.

use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use io_uring::{IoUring, opcode, squeue, types};
use tokio::sync::{mpsc, oneshot};

use super::leg::{Leg, Sent};
use super::timers::Timers;
use super::token::{self, LegId, Op};
use super::{Command, NewCall, Request};
use crate::core::buf::RecvBuf;
use crate::core::call::{Call, Handled, Peer};
use crate::core::ws::Limits;
use crate::core::ws::encoder::MAX_HEADER_LEN;
use crate::io::call_task::{CLOSE_FLUSH, CLOSE_WAIT, EVENT_TICK, SYNTHETIC_CLOSE, UP_RECV};
use crate::io::conn::DOWN_RECV;
use crate::io::driver::{Action, Driver};
use crate::metrics::Metrics;

/// Submission queue entries (the completion queue is 8× larger: one receive per socket is
/// always in flight).
pub(super) const RING_ENTRIES: u32 = 1024;

/// One call on the engine.
struct Slot {
    generation: u32,
    call: Call,
    driver: Option<Driver>,
    span: tracing::Span,
    call_id: String,
    down: Option<u32>,
    up: Option<u32>,
    /// Which connect request is current (older answers are dropped).
    connect_seq: u32,
    hangups: u32,
    /// The synthetic close was fed after Twilio's socket ended without a close frame.
    down_end_fed: bool,
    armed: Option<Instant>,
    tick_at: Instant,
    closing: Option<Closing>,
    done: Option<oneshot::Sender<()>>,
    dirty: bool,
}

/// Deadlines of the close sequence (the epoll shell's, in the same order).
#[derive(Clone, Copy)]
struct Closing {
    /// The OpenAI close frame must be out by then.
    up_by: Instant,
    /// Twilio's close frame awaited until then.
    down_by: Instant,
}

/// The sockets.
#[derive(Default)]
struct Legs {
    slots: Vec<Option<Leg>>,
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl Legs {
    fn insert(&mut self, leg: Leg) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(leg);
            i
        } else {
            self.slots.push(Some(leg));
            self.generations.push(0);
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 sockets")
        }
    }

    /// The leg at `index` and the id its operations carry.
    fn get(&mut self, index: u32) -> Option<(&mut Leg, LegId)> {
        let generation = *self.generations.get(index as usize)?;
        let leg = self.slots.get_mut(index as usize).and_then(Option::as_mut)?;
        Some((leg, LegId { index, generation }))
    }

    /// The leg a completion is for, if it still exists.
    fn by_id(&mut self, id: LegId) -> Option<&mut Leg> {
        let i = id.index as usize;
        if !token::same_generation(*self.generations.get(i)?, id.generation) {
            return None;
        }
        self.slots[i].as_mut()
    }

    /// Frees a leg (its socket is closed when the `TcpStream` drops).
    fn free(&mut self, index: u32) {
        let i = index as usize;
        self.slots[i] = None;
        self.generations[i] = self.generations[i].wrapping_add(1);
        self.free.push(index);
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }
}

/// Submissions queued for the next enter.
struct Queue<'a> {
    ring: &'a mut IoUring,
    sends: &'a mut usize,
}

impl Queue<'_> {
    fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: every entry points into a buffer owned by a `Leg` (or the engine's wake
            // buffer), and a leg is freed only once none of its operations is in flight
            // (`Leg::in_flight`), so the memory outlives the operation.
            #[allow(unsafe_code)]
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return;
            }
            // Full: hand what is queued to the kernel (rare: the queue holds RING_ENTRIES).
            let _ = self.ring.submit();
        }
    }

    fn send(&mut self, entry: &squeue::Entry) {
        *self.sends += 1;
        self.push(entry);
    }
}

/// Completions taken from the queue at once.
type Batch = heapless::Vec<(u64, i32), 256>;

/// Fills `batch` with the completions waiting (as many as fit); false when there were none.
/// Never takes a completion there is no room for: it would be lost, and its socket's operation
/// would look in flight for ever (the bug a load of 300 calls found).
fn take_batch(ring: &mut IoUring, batch: &mut Batch) -> bool {
    batch.clear();
    let mut cq = ring.completion();
    cq.sync();
    while !batch.is_full() {
        let Some(cqe) = cq.next() else { break };
        let _ = batch.push((cqe.user_data(), cqe.result()));
    }
    !batch.is_empty()
}

/// The engine of one worker.
pub(super) struct Engine {
    ring: IoUring,
    /// Boxed: a call's state is a few KiB, moved in and out of its slot on every drive and
    /// never re-allocated by the vector's growth (which would also hold twice the memory).
    slots: Vec<Option<Box<Slot>>>,
    slot_generations: Vec<u32>,
    free_slots: Vec<u32>,
    legs: Legs,
    timers: Timers,
    dirty: Vec<u32>,
    sends: usize,
    commands: Receiver<Command>,
    wake_fd: OwnedFd,
    wake_buf: Box<[u8; 8]>,
    wake_armed: bool,
    requests: mpsc::UnboundedSender<Request>,
    metrics: Arc<Metrics>,
    stopping: bool,
}

/// Builds a ring with the flags that save work where the kernel has them.
pub(super) fn build_ring() -> io::Result<IoUring> {
    let lean = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(RING_ENTRIES * 8)
        .build(RING_ENTRIES);
    let ring = match lean {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(RING_ENTRIES * 8).build(RING_ENTRIES)?
        }
        Err(e) => return Err(e),
    };
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel's io_uring has no EXT_ARG (timeouts on enter; Linux 5.11+)",
        ));
    }
    Ok(ring)
}

impl Engine {
    pub(super) fn new(
        ring: IoUring,
        commands: Receiver<Command>,
        wake_fd: OwnedFd,
        requests: mpsc::UnboundedSender<Request>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            ring,
            slots: Vec::new(),
            slot_generations: Vec::new(),
            free_slots: Vec::new(),
            legs: Legs::default(),
            timers: Timers::with_capacity(4096),
            dirty: Vec::with_capacity(1024),
            sends: 0,
            commands,
            wake_fd,
            wake_buf: Box::new([0; 8]),
            wake_armed: false,
            requests,
            metrics,
            stopping: false,
        }
    }

    /// Runs until [`Command::Stop`] and the last call and socket are gone.
    pub(super) fn run(mut self) {
        loop {
            self.commands();
            while let Some(i) = self.dirty.pop() {
                self.drive(i);
            }
            if self.stopping && self.slots.iter().all(Option::is_none) && self.legs.is_empty() {
                return;
            }
            self.arm_wake();
            if let Err(e) = self.enter() {
                tracing::error!(error = %e, "io_uring_enter failed; the io_uring shell stops (calls on this worker end)");
                return;
            }
            self.completions();
            let now = Instant::now();
            let (slots, dirty) = (&mut self.slots, &mut self.dirty);
            self.timers.pop_due(now, |(i, generation), at| {
                if let Some(Some(slot)) = slots.get_mut(i as usize)
                    && slot.generation == generation
                    && slot.armed == Some(at)
                {
                    slot.armed = None;
                    if !slot.dirty {
                        slot.dirty = true;
                        dirty.push(i);
                    }
                }
            });
        }
    }

    /// One `io_uring_enter`: submit, wait for a completion beyond the sends just submitted or
    /// the next deadline.
    fn enter(&mut self) -> io::Result<()> {
        let want = std::mem::take(&mut self.sends) + 1;
        let result = match self.timers.next() {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                let ts = types::Timespec::from(wait);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submitter().submit_and_wait(want),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        self.wake_armed = true;
        let entry = opcode::Read::new(types::Fd(self.wake_fd.as_raw_fd()), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(token::encode(Op::Wake, LegId { index: 0, generation: 0 }));
        let mut sends = 0;
        Queue { ring: &mut self.ring, sends: &mut sends }.push(&entry);
    }

    fn mark(&mut self, i: u32) {
        if let Some(Some(slot)) = self.slots.get_mut(i as usize)
            && !slot.dirty
        {
            slot.dirty = true;
            self.dirty.push(i);
        }
    }

    fn completions(&mut self) {
        // Collected in batches first: handling needs `self` while the queue borrows the ring.
        let mut batch = Batch::new();
        while take_batch(&mut self.ring, &mut batch) {
            for &(user_data, res) in &batch {
                self.completion(user_data, res);
            }
        }
    }

    fn completion(&mut self, user_data: u64, res: i32) {
        let Some((op, id)) = token::decode(user_data) else { return };
        if op == Op::Wake {
            self.wake_armed = false;
            return;
        }
        let Some(leg) = self.legs.by_id(id) else { return };
        let failure = match op {
            Op::Recv => leg.on_recv(res).map(|e| (false, e)),
            Op::Send => match leg.on_send(res) {
                Sent::Progress => None,
                Sent::Failed(e) => Some((true, e)),
            },
            Op::Shutdown => {
                leg.on_shutdown();
                None
            }
            Op::Wake => None,
        };
        let (owner, peer, idle) = (leg.owner, leg.peer, leg.in_flight == 0);
        match owner {
            Some((i, _)) => {
                if let Some((writing, e)) = failure
                    && let Some(Some(slot)) = self.slots.get(i as usize)
                {
                    let what = if writing { "write" } else { "read" };
                    slot.span.in_scope(|| match peer {
                        Peer::Twilio => tracing::info!(error = %e, "Twilio socket {what} failed"),
                        Peer::OpenAi => tracing::warn!(error = %e, "OpenAI socket {what} failed"),
                    });
                }
                self.mark(i);
            }
            None if idle => self.legs.free(id.index),
            None => {}
        }
    }

    fn commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.command(command),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.stopping = true;
                    return;
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Call(new) => self.add_call(*new, now),
            Command::Connected { slot: (i, generation), seq, result } => {
                let metrics = self.metrics.clone();
                let Some(slot) = self.slot_mut(i, generation) else { return };
                if slot.connect_seq != seq || slot.closing.is_some() || slot.up.is_some() {
                    return; // an answer for a connection no longer wanted: dropped, closed
                }
                match result {
                    Ok(parts) => {
                        let leg =
                            Leg::new(Peer::OpenAi, (i, generation), parts, RecvBuf::with_capacity(UP_RECV));
                        let index = self.legs.insert(leg);
                        let slot = self.slot_mut(i, generation).expect("checked above");
                        slot.up = Some(index);
                        slot.call.upstream_connected(now);
                    }
                    Err(e) => {
                        Metrics::inc(&metrics.upstream_connect_failures);
                        slot.span.in_scope(|| tracing::warn!(error = %e, "OpenAI connect failed"));
                        slot.call.upstream_closed(now);
                    }
                }
                self.mark(i);
            }
            Command::Tool { slot: (i, generation), done } => {
                let Some(slot) = self.slot_mut(i, generation) else { return };
                slot.call.tool_result(&done.call_id, done.ok, &done.output, now);
                self.mark(i);
            }
            Command::Amd { slot: (i, generation), outcome } => {
                let Some(slot) = self.slot_mut(i, generation) else { return };
                slot.call.amd_result(outcome, now);
                self.mark(i);
            }
            Command::Force => {
                for i in 0..self.slots.len() {
                    if let Some(slot) = self.slots[i].as_mut() {
                        slot.span
                            .in_scope(|| tracing::info!("drain deadline reached: shutting the call down"));
                        slot.call.shutdown(now);
                        self.mark(u32::try_from(i).expect("slot index fits u32"));
                    }
                }
            }
            Command::Stop => self.stopping = true,
        }
    }

    fn slot_mut(&mut self, i: u32, generation: u32) -> Option<&mut Slot> {
        self.slots.get_mut(i as usize)?.as_deref_mut().filter(|s| s.generation == generation)
    }

    fn add_call(&mut self, new: NewCall, now: Instant) {
        let NewCall { call, driver, down, down_buf, span, call_id, done } = new;
        let i = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slot_generations.push(0);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 calls")
            }
        };
        let generation = self.slot_generations[i as usize];
        let down = self.legs.insert(Leg::new(Peer::Twilio, (i, generation), down, down_buf));
        self.slots[i as usize] = Some(Box::new(Slot {
            generation,
            call,
            driver: Some(driver),
            span,
            call_id,
            down: Some(down),
            up: None,
            connect_seq: 0,
            hangups: 0,
            down_end_fed: false,
            armed: None,
            tick_at: now + EVENT_TICK,
            closing: None,
            done: Some(done),
            dirty: false,
        }));
        self.mark(i);
    }

    /// Drives one call: see the module docs.
    fn drive(&mut self, i: u32) {
        let Some(mut slot) = self.slots.get_mut(i as usize).and_then(Option::take) else { return };
        slot.dirty = false;
        let span = std::mem::replace(&mut slot.span, tracing::Span::none());
        let entered = span.enter();
        let finished = self.drive_slot(i, &mut slot);
        drop(entered);
        slot.span = span;
        if finished {
            if let Some(driver) = slot.driver.take() {
                driver.close(&mut slot.call);
            }
            if let Some(done) = slot.done.take() {
                let _ = done.send(());
            }
            self.slot_generations[i as usize] = self.slot_generations[i as usize].wrapping_add(1);
            self.free_slots.push(i);
        } else {
            self.slots[i as usize] = Some(slot);
        }
    }

    /// Returns true when the call is over and both sockets are retired.
    #[allow(clippy::too_many_lines, reason = "the epoll loop's order, read top to bottom")]
    fn drive_slot(&mut self, i: u32, slot: &mut Slot) -> bool {
        let now = Instant::now();
        let key = (i, slot.generation);
        let Self { ring, legs, sends, requests, timers, .. } = self;
        let mut queue = Queue { ring, sends };

        // Inputs: bytes already received (again after a send made room, if the call stopped).
        let mut down_blocked = false;
        if let Some((leg, _)) = slot.down.and_then(|d| legs.get(d)) {
            if let Err(e) = leg.pump() {
                tracing::info!(error = %e, "Twilio TLS session failed");
            }
            if !leg.reading && !leg.buf.is_empty() {
                down_blocked = slot.call.handle_downstream(&mut leg.buf, now) == Handled::SendBufferFull;
            }
            if (leg.eof || leg.failed) && !leg.reading && !slot.down_end_fed {
                slot.down_end_fed = true;
                if leg.failed || !slot.call.peer_closed(Peer::Twilio) {
                    // Ended without a close frame: let the core close as `twilio_closed`.
                    leg.buf.consume(leg.buf.len());
                    leg.buf.push(&SYNTHETIC_CLOSE);
                    let _ = slot.call.handle_downstream(&mut leg.buf, now);
                }
            }
        }
        let mut up_blocked = false;
        if let Some(u) = slot.up
            && let Some((leg, _)) = legs.get(u)
        {
            if let Err(e) = leg.pump() {
                tracing::warn!(error = %e, "OpenAI TLS session failed");
            }
            if !leg.reading && !leg.buf.is_empty() {
                up_blocked = slot.call.handle_upstream(&mut leg.buf, now) == Handled::SendBufferFull;
            }
            // Ended: once the call took every whole message it could (it is not waiting for
            // room to send), what is left is at most a partial message the peer never finished.
            if (leg.eof || leg.failed) && !leg.reading && !up_blocked {
                leg.buf.consume(leg.buf.len());
                retire(legs, &mut queue, u);
                slot.up = None;
                up_blocked = false;
                slot.call.upstream_closed(now);
            }
        }
        if slot.call.poll_timeout().is_some_and(|at| at <= now) {
            slot.call.handle_timeout(now);
        }
        if now >= slot.tick_at {
            slot.tick_at = now + EVENT_TICK;
            if let Some(driver) = slot.driver.as_mut() {
                driver.tick(&slot.call);
            }
        }

        // Events: work for the worker's tokio thread, the close.
        let mut actions: heapless::Vec<Action, 8> = heapless::Vec::new();
        let mut overflow = Vec::new();
        let closed = slot.driver.as_mut().and_then(|d| {
            d.poll_events(&mut slot.call, |a| {
                if let Err(a) = actions.push(a) {
                    overflow.push(a);
                }
            })
        });
        for action in actions.into_iter().chain(overflow) {
            match action {
                Action::OpenUpstream => {
                    if let Some(u) = slot.up.take() {
                        // The old connection's close frame goes out if it can, then it is shut.
                        if let Some((leg, id)) = legs.get(u)
                            && leg.fill_out(&mut slot.call)
                            && let Some(entry) = leg.send_entry(id)
                        {
                            queue.send(&entry);
                        }
                        retire(legs, &mut queue, u);
                        up_blocked = false;
                    }
                    slot.connect_seq = slot.connect_seq.wrapping_add(1);
                    let _ = requests.send(Request::Connect {
                        slot: key,
                        seq: slot.connect_seq,
                        span: tracing::Span::current(),
                    });
                }
                Action::AskAmd { wait_ms } => {
                    let _ = requests.send(Request::AskAmd {
                        slot: key,
                        call_id: slot.call_id.clone(),
                        wait_ms,
                        span: tracing::Span::current(),
                    });
                }
                Action::Tool { call_id, name, arguments } => {
                    let _ = requests.send(Request::Tool {
                        slot: key,
                        call_id: slot.call_id.clone(),
                        tool_call_id: call_id,
                        name,
                        arguments,
                        span: tracing::Span::current(),
                    });
                }
                Action::HangUp { tool_call_id, arguments } => {
                    slot.hangups += 1;
                    let _ = requests.send(Request::HangUp {
                        call_id: slot.call_id.clone(),
                        hangups: slot.hangups,
                        tool_call_id,
                        arguments,
                        span: tracing::Span::current(),
                    });
                }
            }
        }
        if let Some(reason) = closed
            && slot.closing.is_none()
        {
            if let Some(driver) = slot.driver.as_mut() {
                driver.ended(&slot.call, reason);
            }
            slot.closing =
                Some(Closing { up_by: now + CLOSE_FLUSH, down_by: now + CLOSE_FLUSH + CLOSE_WAIT });
        }

        // Outputs: each socket's send buffer filled from the call, one send each.
        match slot.down.and_then(|d| legs.get(d)) {
            Some((leg, id)) if !leg.failed => {
                if leg.fill_out(&mut slot.call)
                    && let Some(entry) = leg.send_entry(id)
                {
                    queue.send(&entry);
                }
            }
            _ => discard(&mut slot.call, Peer::Twilio),
        }
        if let Some(u) = slot.up
            && let Some((leg, id)) = legs.get(u)
            && leg.fill_out(&mut slot.call)
            && let Some(entry) = leg.send_entry(id)
        {
            queue.send(&entry);
        }

        // The close: OpenAI's close frame out, Twilio's awaited, then each socket retired.
        if let Some(closing) = slot.closing {
            if let Some(u) = slot.up
                && let Some((leg, id)) = legs.get(u)
                && (finished_sending(leg, &mut slot.call, &mut queue, id)
                    || leg.failed
                    || leg.eof
                    || now >= closing.up_by)
            {
                retire(legs, &mut queue, u);
                slot.up = None;
            }
            if let Some(d) = slot.down
                && let Some((leg, id)) = legs.get(d)
            {
                let peer_done = leg.eof || leg.failed || slot.call.peer_closed(Peer::Twilio);
                if (peer_done && finished_sending(leg, &mut slot.call, &mut queue, id))
                    || now >= closing.down_by
                {
                    retire(legs, &mut queue, d);
                    slot.down = None;
                }
            }
            if slot.up.is_none() && slot.down.is_none() {
                return true;
            }
        }

        // Receives: one in flight per socket unless the call is not taking more.
        if let Some(d) = slot.down
            && let Some((leg, id)) = legs.get(d)
            && !down_blocked
        {
            if !leg.reading {
                leg.buf.fit(DOWN_RECV, Limits::TWILIO.max_frame + MAX_HEADER_LEN);
            }
            if let Some(entry) = leg.recv_entry(id) {
                queue.push(&entry);
            }
        }
        if let Some(u) = slot.up
            && let Some((leg, id)) = legs.get(u)
            && !up_blocked
        {
            if !leg.reading {
                leg.buf.fit(UP_RECV, Limits::OPENAI.max_frame + MAX_HEADER_LEN);
            }
            if let Some(entry) = leg.recv_entry(id) {
                queue.push(&entry);
            }
        }

        // The next deadline.
        let mut next = slot.tick_at;
        if let Some(at) = slot.call.poll_timeout() {
            next = next.min(at);
        }
        if let Some(c) = slot.closing {
            next = next.min(c.up_by).min(c.down_by);
        }
        // Armed only when it moves earlier: a deadline that moved later (every frame pushes
        // the media and keep-alive deadlines back) is found when the armed one fires, and
        // re-armed then. So the heap holds about one entry per call, not one per frame.
        if slot.armed.is_none_or(|armed| next < armed) {
            slot.armed = Some(next);
            timers.push(next, key);
        }
        false
    }
}

/// Whether everything the call has for this socket has left, queueing TLS `close_notify` and
/// the sends that remain. Used only once the call is closed.
fn finished_sending(leg: &mut Leg, call: &mut Call, queue: &mut Queue<'_>, id: LegId) -> bool {
    if call.poll_transmit(leg.peer).is_some() || leg.failed {
        return leg.failed;
    }
    if leg.flushed() {
        leg.close_notify();
    }
    if leg.fill_out(call)
        && let Some(entry) = leg.send_entry(id)
    {
        queue.send(&entry);
    }
    leg.flushed() && call.poll_transmit(leg.peer).is_none()
}

/// Retires a socket: no owner any more, shut down, freed at its last completion.
fn retire(legs: &mut Legs, queue: &mut Queue<'_>, index: u32) {
    let Some((leg, id)) = legs.get(index) else { return };
    leg.owner = None;
    if let Some(entry) = leg.shutdown_entry(id) {
        queue.push(&entry);
    }
    if leg.in_flight == 0 {
        legs.free(index);
    }
}

/// Forgets what `call` has for `peer` (its socket is gone).
fn discard(call: &mut Call, peer: Peer) {
    while let Some(bytes) = call.poll_transmit(peer) {
        let n = bytes.len();
        call.transmitted(peer, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_completion_is_taken_even_beyond_a_batch() {
        let mut ring = build_ring().expect("io_uring is allowed here");
        let total = 700u64; // more than two batches, fewer than the submission queue holds
        for i in 0..total {
            let nop = opcode::Nop::new().build().user_data(i + 1);
            // SAFETY: a no-op references no memory.
            #[allow(unsafe_code)]
            unsafe {
                ring.submission().push(&nop).unwrap();
            }
        }
        ring.submit_and_wait(700).unwrap();
        let (mut seen, mut sum, mut batch) = (0u64, 0u64, Batch::new());
        while take_batch(&mut ring, &mut batch) {
            seen += batch.len() as u64;
            sum += batch.iter().map(|&(u, _)| u).sum::<u64>();
        }
        assert_eq!((seen, sum), (total, total * (total + 1) / 2), "each completion exactly once");
    }
}
