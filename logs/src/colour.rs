//! Whether log lines get ANSI colours: only for a person looking at a terminal.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

/// Colours when stderr (where logs go) is a terminal and `NO_COLOR` is unset or empty.
pub fn enabled_for_stderr() -> bool {
    enabled(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

/// The rule, on given facts: a terminal, and no non-empty `NO_COLOR` (<https://no-color.org>:
/// "when present and not an empty string").
pub fn enabled(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(enabled(true, None));
        assert!(enabled(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!enabled(true, Some(OsStr::new("1"))));
        assert!(!enabled(false, None), "a file or a pipe never gets escape codes");
        assert!(!enabled(false, Some(OsStr::new("1"))));
    }
}
