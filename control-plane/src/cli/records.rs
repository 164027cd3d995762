//! `callway-control leads | lead <id> | call <id>`: the record of every lead and call, from the
//! configured store (PostgreSQL, SQLite or Supabase REST), as text for a person or `--json` for
//! a script. Numbers are masked unless `--reveal`; ids are their text form.
//!
//! ```text
//! callway-control leads [--limit N] [--json] [--reveal]   newest first (default 50)
//! callway-control lead <lead id> [--json] [--reveal]      the lead, its calls, its retries
//! callway-control call <call id> [--json] [--reveal]      timeline, dialogue, summary, usage
//! ```

use std::process::ExitCode;

use uuid::Uuid;

use crate::config::Config;
use crate::record::{self, Numbers};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which record.
    pub what: What,
    /// `--json`.
    pub json: bool,
    /// `--reveal`: numbers in full.
    pub numbers: Numbers,
}

/// Which record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// `leads [--limit N]`.
    Leads {
        /// How many.
        limit: u32,
    },
    /// `lead <id>`.
    Lead(Uuid),
    /// `call <id>`.
    Call(Uuid),
}

/// Usage lines of these commands (for `callway-control --help`).
pub const USAGE: &str = "  callway-control leads [--limit N] [--json] [--reveal]
                                   the newest leads (default 50): name, masked number, consent,
                                   source, calls and the last call's outcome
  callway-control lead <lead id> [--json] [--reveal]
                                   a lead, its calls and its retries
  callway-control call <call id> [--json] [--reveal]
                                   a call: timeline, durations, dialogue, summary, usage
                                   (numbers masked unless --reveal; --json for scripts)
";

/// Parses `args` (the command name first); `Err` is the message to print.
pub fn parse(args: &[String]) -> Result<Request, String> {
    let (command, rest) = args.split_first().ok_or("no command")?;
    let mut json = false;
    let mut numbers = Numbers::Masked;
    let mut limit = record::read::DEFAULT_LEADS;
    let mut id = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--reveal" => numbers = Numbers::Revealed,
            "--limit" if command == "leads" => {
                let v = it.next().ok_or("--limit needs a number")?;
                limit =
                    v.parse().ok().filter(|n| (1..=record::read::MAX_LEADS).contains(n)).ok_or_else(
                        || format!("--limit must be 1 to {}, got {v:?}", record::read::MAX_LEADS),
                    )?;
            }
            flag if flag.starts_with("--") => return Err(format!("{command}: unknown option {flag}")),
            value if id.is_none() && command != "leads" => {
                let parsed = Uuid::parse_str(value).map_err(|_| {
                    format!(
                        "{command} {value:?}: not a {command} id (ids look like 0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11; `callway-control leads` lists them)"
                    )
                })?;
                id = Some(parsed);
            }
            extra => return Err(format!("{command}: unexpected argument {extra:?}")),
        }
    }
    let what = match (command.as_str(), id) {
        ("leads", _) => What::Leads { limit },
        ("lead", Some(id)) => What::Lead(id),
        ("call", Some(id)) => What::Call(id),
        (c @ ("lead" | "call"), None) => {
            return Err(format!("usage: callway-control {c} <{c} id> [--json] [--reveal]"));
        }
        (other, _) => return Err(format!("unknown command {other:?}")),
    };
    Ok(Request { what, json, numbers })
}

/// Runs a parsed request against the configured store and prints the record on stdout.
pub async fn run(req: &Request, config: &Config) -> ExitCode {
    let store = match crate::open_store(&config.storage).await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let printed = match &req.what {
        What::Leads { limit } => record::read::leads(&store, *limit, req.numbers)
            .await
            .map(|list| Some(if req.json { to_json(&list) } else { record::text::leads(&list) })),
        What::Lead(id) => record::read::lead(&store, *id, req.numbers)
            .await
            .map(|r| r.map(|r| if req.json { to_json(&r) } else { record::text::lead(&r) })),
        What::Call(id) => record::read::call(&store, *id, req.numbers)
            .await
            .map(|r| r.map(|r| if req.json { to_json(&r) } else { record::text::call(&r) })),
    };
    match printed {
        Ok(Some(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            let (kind, id) = match &req.what {
                What::Lead(id) => ("lead", id),
                What::Call(id) => ("call", id),
                What::Leads { .. } => unreachable!("a list is never missing"),
            };
            fail(&format!("no {kind} {id} in the {} store", store.kind()))
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn to_json(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("callway-control: {msg}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_parse_with_their_options() {
        assert_eq!(
            parse(&args("leads")),
            Ok(Request { what: What::Leads { limit: 50 }, json: false, numbers: Numbers::Masked })
        );
        assert_eq!(
            parse(&args("leads --limit 5 --json --reveal")),
            Ok(Request { what: What::Leads { limit: 5 }, json: true, numbers: Numbers::Revealed })
        );
        let id = "0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11";
        assert_eq!(parse(&args(&format!("call {id} --json"))).unwrap().what, What::Call(id.parse().unwrap()));
        assert_eq!(parse(&args(&format!("lead --reveal {id}"))).unwrap().numbers, Numbers::Revealed);
    }

    #[test]
    fn mistakes_get_a_message_saying_what_to_do() {
        assert!(parse(&args("lead")).unwrap_err().contains("usage: callway-control lead <lead id>"));
        assert!(parse(&args("call 42")).unwrap_err().contains("callway-control leads` lists them"));
        assert!(parse(&args("leads --limit 0")).unwrap_err().contains("--limit must be 1 to 1000"));
        assert!(parse(&args("leads --since x")).unwrap_err().contains("unknown option --since"));
        let id = "0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11";
        assert!(parse(&args(&format!("lead {id} {id}"))).unwrap_err().contains("unexpected argument"));
    }
}
