//! `callway-control leads | lead <id> | call <id> | calls --cost`: the record of every lead and
//! call, from the configured store (PostgreSQL, SQLite or Supabase REST), as text for a person
//! or `--json` for a script. Numbers are masked unless `--reveal`; ids are their text form.
//!
//! ```text
//! callway-control leads [--limit N] [--json] [--reveal]   newest first (default 50)
//! callway-control lead <lead id> [--json] [--reveal]      the lead, its calls, its retries
//! callway-control call <call id> [--json] [--reveal]      timeline, dialogue, summary, usage
//! callway-control calls --cost [--lead <id>] [--since <date>] [--limit N] [--json] [--reveal]
//!                                                         each call's cost, newest first, and the sum
//! ```
//! With `PRICES_FILE` set, `lead` and `call` show the cost too; `calls --cost` needs it.

use std::process::ExitCode;

use uuid::Uuid;

use crate::config::Config;
use crate::cost::{CallFilter, Pricing};
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
    /// `calls --cost [--lead <id>] [--since <date>] [--limit N]`.
    Calls {
        /// Only this lead's calls.
        lead: Option<Uuid>,
        /// Only calls asked for since then.
        since: Option<time::OffsetDateTime>,
        /// How many, newest first.
        limit: u32,
    },
}

/// Usage lines of these commands (for `callway-control --help`).
pub const USAGE: &str = "  callway-control leads [--limit N] [--json] [--reveal]
                                   the newest leads (default 50): name, masked number, consent,
                                   source, calls and the last call's outcome
  callway-control lead <lead id> [--json] [--reveal]
                                   a lead, its calls and its retries
  callway-control call <call id> [--json] [--reveal]
                                   a call: timeline, durations, dialogue, summary, usage
  callway-control calls --cost [--lead <lead id>] [--since YYYY-MM-DD] [--limit N] [--json] [--reveal]
                                   the newest calls (default 50) with their cost (PRICES_FILE):
                                   engine and model, Twilio's seconds and part, OpenAI's tokens
                                   or seconds and part, total, and the sum
                                   (numbers masked unless --reveal; --json for scripts)
";

/// `--since`: a date (`2026-12-01`, midnight UTC) or an RFC 3339 time.
fn parse_since(v: &str) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, &date)
        .map(|d| d.midnight().assume_utc())
        .or_else(|_| time::OffsetDateTime::parse(v, &Rfc3339))
        .map_err(|_| {
            format!("--since must be a date such as 2026-12-01 (UTC) or an RFC 3339 time, got {v:?}")
        })
}

/// Parses `args` (the command name first); `Err` is the message to print.
pub fn parse(args: &[String]) -> Result<Request, String> {
    let (command, rest) = args.split_first().ok_or("no command")?;
    let mut json = false;
    let mut numbers = Numbers::Masked;
    let mut limit = record::read::DEFAULT_LEADS;
    let mut id = None;
    let (mut cost, mut lead, mut since) = (false, None, None);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--reveal" => numbers = Numbers::Revealed,
            "--cost" if command == "calls" => cost = true,
            "--lead" if command == "calls" => {
                let v = it.next().ok_or("--lead needs a lead id")?;
                lead = Some(Uuid::parse_str(v).map_err(|_| {
                    format!("--lead {v:?}: not a lead id (`callway-control leads` lists them)")
                })?);
            }
            "--since" if command == "calls" => {
                since = Some(parse_since(it.next().ok_or("--since needs a date such as 2026-12-01")?)?);
            }
            "--limit" if command == "leads" || command == "calls" => {
                let v = it.next().ok_or("--limit needs a number")?;
                limit =
                    v.parse().ok().filter(|n| (1..=record::read::MAX_LEADS).contains(n)).ok_or_else(
                        || format!("--limit must be 1 to {}, got {v:?}", record::read::MAX_LEADS),
                    )?;
            }
            flag if flag.starts_with("--") => return Err(format!("{command}: unknown option {flag}")),
            value if id.is_none() && command != "leads" && command != "calls" => {
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
        ("calls", _) if cost => What::Calls { lead, since, limit },
        ("calls", _) => {
            return Err("usage: callway-control calls --cost [--lead <lead id>] [--since YYYY-MM-DD] [--limit N] [--json] [--reveal] (the list of calls shows their cost; one call in full: callway-control call <call id>)".into());
        }
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
    let pricing = Pricing::of(config);
    let printed = match &req.what {
        What::Leads { limit } => record::read::leads(&store, *limit, req.numbers)
            .await
            .map(|list| Some(if req.json { to_json(&list) } else { record::text::leads(&list) })),
        What::Lead(id) => record::read::lead_priced(&store, *id, req.numbers, pricing.as_ref())
            .await
            .map(|r| r.map(|r| if req.json { to_json(&r) } else { record::text::lead(&r) })),
        What::Call(id) => record::read::call_priced(&store, *id, req.numbers, pricing.as_ref())
            .await
            .map(|r| r.map(|r| if req.json { to_json(&r) } else { record::text::call(&r) })),
        What::Calls { lead, since, limit } => {
            let Some(pricing) = pricing else { return fail(crate::cost::NO_PRICES) };
            let filter = CallFilter { lead: *lead, call: None, since: *since, limit: *limit };
            pricing
                .report(&store, filter, req.numbers)
                .await
                .map(|r| Some(if req.json { to_json(&r) } else { record::text::costs(&r) }))
        }
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
                What::Leads { .. } | What::Calls { .. } => unreachable!("a list is never missing"),
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
        let since = time::macros::datetime!(2026-12-01 00:00 UTC);
        assert_eq!(
            parse(&args(&format!("calls --cost --lead {id} --since 2026-12-01 --limit 5 --json"))).unwrap(),
            Request {
                what: What::Calls { lead: Some(id.parse().unwrap()), since: Some(since), limit: 5 },
                json: true,
                numbers: Numbers::Masked
            }
        );
        let at = parse(&args("calls --cost --since 2026-12-01T10:00:00+01:00")).unwrap().what;
        assert_eq!(at, What::Calls { lead: None, since: Some(since + time::Duration::hours(9)), limit: 50 });
    }

    #[test]
    fn mistakes_get_a_message_saying_what_to_do() {
        assert!(parse(&args("lead")).unwrap_err().contains("usage: callway-control lead <lead id>"));
        assert!(parse(&args("call 42")).unwrap_err().contains("callway-control leads` lists them"));
        assert!(parse(&args("leads --limit 0")).unwrap_err().contains("--limit must be 1 to 1000"));
        assert!(parse(&args("leads --since x")).unwrap_err().contains("unknown option --since"));
        assert!(parse(&args("calls")).unwrap_err().contains("usage: callway-control calls --cost"));
        assert!(parse(&args("calls --cost --since 1/12")).unwrap_err().contains("--since must be a date"));
        assert!(parse(&args("calls --cost --lead x")).unwrap_err().contains("not a lead id"));
        let id = "0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11";
        assert!(parse(&args(&format!("lead {id} {id}"))).unwrap_err().contains("unexpected argument"));
    }
}
