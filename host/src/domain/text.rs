//! Text rules every boundary shares: what may be stored, and how outside text that
//! breaks them is made safe.
//!
//! PostgreSQL refuses NUL in a `TEXT` value and SQLite keeps it, so the host never lets
//! one reach a column: input the API validates is refused ([`control_character`] names
//! the first offender), and text the host only relays (a mapper's error message, a
//! sidecar's error body) is made [`storable`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// The first control character in `text` other than those in `allowed`, if any.
pub fn control_character(text: &str, allowed: &[char]) -> Option<char> {
    text.chars()
        .find(|c| c.is_control() && !allowed.contains(c))
}

/// `text` safe for a `TEXT` column of either database and at most `max` bytes: control
/// characters other than newline and tab are written as `\u{…}` escapes (a NUL would be
/// refused, an escape sequence would garble a terminal), and a longer text is cut on a
/// character boundary with a marker.
pub fn storable(text: &str, max: usize) -> Cow<'_, str> {
    let clean = if control_character(text, &['\n', '\t']).is_some() {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if c.is_control() && c != '\n' && c != '\t' {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    };
    match truncate(&clean, max) {
        Cow::Borrowed(_) => clean,
        Cow::Owned(cut) => Cow::Owned(cut),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with a marker when cut.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_unless_allowed() {
        assert_eq!(control_character("a\0b", &[]), Some('\0'));
        assert_eq!(control_character("a\nb\tc", &['\n', '\t']), None);
        assert_eq!(control_character("a\nb", &[]), Some('\n'));
        assert_eq!(control_character("\u{1b}[31m", &['\n']), Some('\u{1b}'));
        assert_eq!(control_character("ünïcödé ✓", &[]), None);
    }

    #[test]
    fn storable_text_escapes_controls_and_is_bounded() {
        assert_eq!(storable("plain\nline\tx", 100), "plain\nline\tx");
        assert_eq!(storable("nul\0here", 100), "nul\\u{0}here");
        assert_eq!(storable("\u{1b}[2J", 100), "\\u{1b}[2J");
        let text = "é".repeat(100);
        let long = storable(&text, 11);
        assert!(long.starts_with("ééééé…"), "{long}");
        assert!(!storable(&format!("{}\0", "x".repeat(50)), 20).contains('\0'));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééé", 3);
        assert!(cut.starts_with("é…"), "{cut}");
        assert!(cut.contains("4 bytes cut"));
    }
}
