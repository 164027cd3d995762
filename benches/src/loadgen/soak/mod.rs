//! The soak (issue 11, item 10): the load generator's calls for a long time with the faults
//! of real calls — barge-ins, tool calls, OpenAI drops, callers hanging up at random and new
//! calls replacing them — and what must still hold: every frame relayed or cut by an injected
//! fault, none lost; the gateway's memory flat; no OpenAI session left; no error the real
//! server would have sent.
//!
//! It is the load generator's own loop (`--soak`), not a second harness: the callers, the
//! stand-in and the stub control plane are the same, and stay cheaper per frame than the
//! gateway. What the soak adds, one concern per file:
//! - [`options`]: its command-line flags; [`driver`]: the schedule of hang-ups, replacement
//!   calls and drop waves, checked every 10 ms of the loop's one tick;
//! - [`script`]: the stand-in's scripted turns under the real server's rules;
//! - [`ledger`]: how frames in flight at a fault are accounted; [`checks`]: barge-in checks
//!   across the two legs of a call; [`counts`]: what it counts;
//! - [`metrics`]: the gateway's `/metrics`; [`report`]: the result, RSS over time, the table.

pub mod checks;
pub mod counts;
pub mod driver;
pub mod ledger;
pub mod metrics;
pub mod options;
pub mod report;
pub mod script;

use self::checks::Checks;
use self::counts::SoakCounts;

/// What the callers and the stand-in sessions of a loop share in a soak.
#[derive(Debug, Default)]
pub struct SoakShared {
    /// Cross-leg checks, by call.
    pub checks: Checks,
    /// Counts.
    pub counts: SoakCounts,
}
