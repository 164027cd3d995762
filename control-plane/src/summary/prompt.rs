//! What the summary model is given: instructions in the lead's language and the phone
//! conversation as lines `Agent: …` / `Prospect: …`, preceded by the web conversation's summary
//! the call was placed with. Sans-IO.

use crate::record::CallRecord;

/// Longest transcript sent (characters; the start and the end of a longer call are kept).
pub const MAX_INPUT_CHARS: usize = 24_000;

/// The instructions, in French: the lead's language (the agents speak French only, and
/// the call context says `fr`).
pub const INSTRUCTIONS_FR: &str = "Tu résumes un appel commercial téléphonique pour l'équipe \
    commerciale, en français, en quatre lignes courtes : Objectif de l'appel ; Informations \
    confirmées ; Objections ; Prochaine étape convenue (ou « aucune »). N'invente rien, ne répète \
    aucun numéro de téléphone.";

/// The conversation as the model reads it; `None` when the phone part has no line.
pub fn transcript(rec: &CallRecord) -> Option<String> {
    let mut out = String::new();
    let mut phone_lines = 0;
    for l in &rec.dialogue {
        let who = match (l.part, l.speaker) {
            ("web", _) => "Résumé de la conversation web",
            (_, "agent") => "Agent",
            _ => "Prospect",
        };
        if l.part == "phone" {
            phone_lines += 1;
        }
        out.push_str(who);
        out.push_str(": ");
        out.push_str(l.text.trim());
        out.push('\n');
    }
    if phone_lines == 0 {
        return None;
    }
    if out.chars().count() > MAX_INPUT_CHARS {
        let chars: Vec<char> = out.chars().collect();
        let half = MAX_INPUT_CHARS / 2;
        let head: String = chars[..half].iter().collect();
        let tail: String = chars[chars.len() - half..].iter().collect();
        out = format!("{head}\n[…]\n{tail}");
    }
    Some(out)
}
