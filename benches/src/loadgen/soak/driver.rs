//! The soak's schedule on the loop side: when each call hangs up, which call takes a free
//! slot, when a wave of OpenAI drops comes and which sessions it takes. Pure bookkeeping: the
//! loop (`event_loop.rs`) asks it every 10 ms of its one tick and acts on the sockets.

use super::options::SoakArgs;
use super::script::{Script, ScriptConfig};
use crate::loadgen::setup::splitmix;

/// What a loop needs to run a soak.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    /// The flags.
    pub args: SoakArgs,
    /// Seeds the draws.
    pub seed: u64,
}

/// The schedule of one loop's soak.
#[derive(Debug)]
pub struct Driver {
    script: ScriptConfig,
    call_min_ns: u64,
    call_span_ns: u64,
    drop_every_ns: u64,
    drop_share: f64,
    rng: u64,
    seed: u64,
    next_global: u32,
    globals: u32,
    /// When each slot's call hangs up (ns since the origin).
    hang_at: Vec<u64>,
    /// Slots left empty: no identity left for a new call.
    retired: Vec<bool>,
    /// The slot of each call (`u32::MAX`: none yet).
    slot_of: Vec<u32>,
    next_drop_ns: u64,
    sessions: u64,
}

impl Driver {
    /// For `slots` concurrent calls, `globals` prepared identities, the first of them
    /// `0..slots` placed in order; the first drop wave at `first_drop_ns`.
    pub fn new(plan: &SoakPlan, slots: usize, globals: u32, first_drop_ns: u64) -> Self {
        let a = &plan.args;
        let min = a.call_min.as_nanos() as u64;
        Self {
            script: a.script(),
            call_min_ns: min,
            call_span_ns: (a.call_max.as_nanos() as u64 - min).max(1),
            drop_every_ns: a.drop_every.as_nanos() as u64,
            drop_share: a.drop_share,
            rng: splitmix(plan.seed ^ 0x50a6),
            seed: plan.seed,
            next_global: slots as u32,
            globals,
            hang_at: vec![u64::MAX; slots],
            retired: vec![false; slots],
            slot_of: (0..globals).map(|g| if (g as usize) < slots { g } else { u32::MAX }).collect(),
            next_drop_ns: first_drop_ns,
            sessions: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng = splitmix(self.rng);
        self.rng
    }

    /// Call `global` started in `slot` at `now_ns`: draws when it hangs up.
    pub fn started(&mut self, slot: usize, global: u32, now_ns: u64) {
        let len = self.call_min_ns + self.next() % self.call_span_ns;
        self.hang_at[slot] = now_ns + len;
        if let Some(s) = self.slot_of.get_mut(global as usize) {
            *s = slot as u32;
        }
    }

    /// Whether `slot`'s call is due to hang up at `now_ns` (once: the time is then cleared).
    pub fn hang_up_due(&mut self, slot: usize, now_ns: u64) -> bool {
        if now_ns >= self.hang_at[slot] {
            self.hang_at[slot] = u64::MAX;
            return true;
        }
        false
    }

    /// Puts a hang-up back by `delay_ns` (the call was not streaming yet).
    pub fn postpone(&mut self, slot: usize, now_ns: u64, delay_ns: u64) {
        self.hang_at[slot] = now_ns + delay_ns;
    }

    /// The next call for free `slot`; `None` (and the slot retired, counted once: the `bool`)
    /// when every identity is used.
    pub fn take_global(&mut self, slot: usize) -> Result<u32, bool> {
        if self.retired[slot] {
            return Err(false);
        }
        if self.next_global >= self.globals {
            self.retired[slot] = true;
            return Err(true);
        }
        let g = self.next_global;
        self.next_global += 1;
        Ok(g)
    }

    /// The slot of call `global`, if it has one.
    pub fn slot_of(&self, global: u32) -> Option<usize> {
        self.slot_of.get(global as usize).filter(|&&s| s != u32::MAX).map(|&s| s as usize)
    }

    /// Whether a drop wave is due at `now_ns` (then the next one is scheduled).
    pub fn drop_wave_due(&mut self, now_ns: u64) -> bool {
        if now_ns >= self.next_drop_ns {
            self.next_drop_ns = now_ns + self.drop_every_ns;
            return true;
        }
        false
    }

    /// Whether the wave takes the next session.
    pub fn take_session(&mut self) -> bool {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        u < self.drop_share
    }

    /// The script of a new OpenAI session opened at `now_ns`.
    pub fn new_session(&mut self, now_ns: u64) -> Script {
        self.sessions += 1;
        Script::new(self.script, self.sessions, self.seed, now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn plan(extra: &[&str]) -> SoakPlan {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: SoakArgs,
        }
        let args = Cli::try_parse_from(["x"].iter().chain(extra)).unwrap().args;
        SoakPlan { args, seed: 7 }
    }

    #[test]
    fn calls_hang_up_inside_the_bounds_and_slots_take_new_calls() {
        let mut d = Driver::new(&plan(&["--call-min", "30s", "--call-max", "60s"]), 2, 3, 0);
        d.started(0, 0, 1_000);
        assert!(!d.hang_up_due(0, 30_000_000_000));
        assert!(d.hang_up_due(0, 61_000_000_000));
        assert!(!d.hang_up_due(0, 62_000_000_000), "once");
        assert_eq!(d.take_global(0), Ok(2));
        d.started(0, 2, 0);
        assert_eq!(d.slot_of(2), Some(0));
        assert_eq!(d.slot_of(1), Some(1), "the first calls sit in their own slots");
        assert_eq!(d.take_global(1), Err(true), "identities used up: retired, counted once");
        assert_eq!(d.take_global(1), Err(false));
    }

    #[test]
    fn waves_are_periodic_and_take_about_their_share() {
        let mut d = Driver::new(&plan(&["--drop-every", "3m", "--drop-share", "0.25"]), 1, 1, 5);
        assert!(!d.drop_wave_due(4) && d.drop_wave_due(5) && !d.drop_wave_due(6));
        assert!(d.drop_wave_due(5 + 180_000_000_000));
        let taken = (0..10_000).filter(|_| d.take_session()).count();
        assert!((2_300..2_700).contains(&taken), "{taken}");
        let none = Driver::new(&plan(&["--drop-share", "0"]), 1, 1, 0).take_session();
        assert!(!none);
    }
}
