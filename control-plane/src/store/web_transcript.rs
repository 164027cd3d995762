//! The web conversation stored with a call (`calls.web_transcript`): the lines the visitor's
//! page saw, JSON `[{"speaker": "agent"|"caller", "text": …}]` in a text column (PostgreSQL,
//! SQLite and Supabase alike), `NULL` when there is none. Written when the call is placed
//! (`trigger_call`), carried to retries, given to the gateway in the call context (GPT-Live
//! starts the phone session with it), shown in the call's record, purged with the transcripts
//! after `TRANSCRIPT_RETENTION_DAYS` and erased with the lead.

use contract::internal_api::TranscriptLine;

/// The column's value for `lines`: `None` (SQL `NULL`) when there are none.
pub fn encode(lines: &[TranscriptLine]) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    Some(serde_json::to_string(lines).expect("transcript lines serialise"))
}

/// The lines of a stored value. A value this build cannot read (a newer build's shape) reads as
/// no lines, with a warning: the call goes on from its summary.
pub fn decode(stored: Option<&str>) -> Vec<TranscriptLine> {
    let Some(s) = stored else { return Vec::new() };
    match serde_json::from_str(s) {
        Ok(lines) => lines,
        Err(e) => {
            tracing::warn!(error = %e, "a stored web transcript is unreadable: the call goes on from its summary");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::internal_api::Speaker;

    #[test]
    fn no_lines_is_null_and_lines_round_trip() {
        assert_eq!(encode(&[]), None);
        assert!(decode(None).is_empty());
        let lines = vec![
            TranscriptLine { speaker: Speaker::Agent, text: "Bonjour, je suis Claire.".into() },
            TranscriptLine { speaker: Speaker::Caller, text: "Rappelez-moi \"vite\"".into() },
        ];
        let stored = encode(&lines).unwrap();
        assert_eq!(decode(Some(&stored)), lines);
    }

    #[test]
    fn an_unreadable_value_reads_as_no_lines() {
        assert!(decode(Some("{not json")).is_empty());
        assert!(decode(Some(r#"[{"speaker":"robot","text":"x"}]"#)).is_empty());
    }
}
