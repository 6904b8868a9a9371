//! What the operator types into a search: an id, or its first or last digits (the
//! console's tables show an id's last eight), parsed once into what the store can match.
//!
//! Task and mutation ids are time-ordered (UUIDv7: their first digits are the time they
//! were made, their last ones random), so an id's end tells ids apart and its start
//! finds what was made at a time; the search matches either.

/// An id, or its first or last digits: at least 8 hex digits (dashes as in a UUID are
/// ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdDigits {
    /// The lower-case hex digits, without dashes (8 to 32).
    digits: String,
}

/// Fewest digits a search must have (the console shows eight).
pub const MIN_DIGITS: usize = 8;

/// The dash positions of a UUID's text (`8-4-4-4-12`), as digit offsets.
const DASHES: [usize; 4] = [8, 12, 16, 20];

impl IdDigits {
    /// Parses `raw`, or says what is wrong with it in words an operator understands.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 36 {
            return Err("an id is at most 36 characters long".to_owned());
        }
        let digits: String = trimmed
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{}` is not an id: `{bad}` is not a hex digit",
                trimmed.chars().take(40).collect::<String>()
            ));
        }
        if digits.len() < MIN_DIGITS {
            return Err(format!(
                "give at least {MIN_DIGITS} characters of the id (got {})",
                digits.len()
            ));
        }
        if digits.len() > 32 {
            return Err("an id has at most 32 hex digits".to_owned());
        }
        Ok(Self { digits })
    }

    /// The whole id, when these are all its digits.
    pub fn whole(&self) -> Option<uuid::Uuid> {
        if self.digits.len() == 32 {
            uuid::Uuid::parse_str(&self.digits).ok()
        } else {
            None
        }
    }

    /// The smallest and the largest UUID starting with these digits.
    pub fn range(&self) -> (uuid::Uuid, uuid::Uuid) {
        let pad = |with: char| {
            let mut full = self.digits.clone();
            while full.len() < 32 {
                full.push(with);
            }
            uuid::Uuid::parse_str(&full).unwrap_or_default()
        };
        (pad('0'), pad('f'))
    }

    /// The digits, lower-case and without dashes (to match the end of an id's hex).
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The start of the id as text (`8-4-4-4-12` with dashes), for ids stored as text.
    pub fn text(&self) -> String {
        dashed(&self.digits, 0)
    }

    /// The end of the id as text, dashed as in a whole id, for ids stored as text.
    pub fn end_text(&self) -> String {
        dashed(&self.digits, 32 - self.digits.len())
    }
}

/// `digits`, which stand at digit offset `from` of a UUID, with the UUID's dashes
/// between them.
fn dashed(digits: &str, from: usize) -> String {
    let mut out = String::with_capacity(36);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && DASHES.contains(&(from + i)) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digits_make_a_range_of_uuids_and_an_end() {
        let p = IdDigits::parse(" 0A1B2C3D ").unwrap();
        assert_eq!(p.whole(), None);
        let (lo, hi) = p.range();
        assert_eq!(lo.to_string(), "0a1b2c3d-0000-0000-0000-000000000000");
        assert_eq!(hi.to_string(), "0a1b2c3d-ffff-ffff-ffff-ffffffffffff");
        assert_eq!(p.text(), "0a1b2c3d");
        assert_eq!(p.end_text(), "0a1b2c3d");
        assert_eq!(p.digits(), "0a1b2c3d");
        assert_eq!(
            IdDigits::parse("0a1b2c3d-4e5f").unwrap().text(),
            "0a1b2c3d-4e5f"
        );
    }

    #[test]
    fn the_end_of_an_id_is_dashed_as_in_the_id() {
        let id = uuid::Uuid::now_v7().to_string();
        for n in [8, 12, 13, 16, 17, 20, 21, 30] {
            let end: String = id
                .chars()
                .rev()
                .take(n)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let p = IdDigits::parse(&end.replace('-', "")).unwrap();
            assert!(id.ends_with(&p.end_text()), "{id} {}", p.end_text());
            assert!(id.starts_with(&IdDigits::parse(&id[..n]).unwrap().text()));
        }
    }

    #[test]
    fn a_whole_id_is_its_own_range() {
        let id = uuid::Uuid::new_v4();
        let p = IdDigits::parse(&id.to_string()).unwrap();
        assert_eq!(p.whole(), Some(id));
        assert_eq!(p.range(), (id, id));
        assert_eq!(p.text(), id.to_string());
        assert_eq!(p.end_text(), id.to_string());
    }

    #[test]
    fn short_long_or_foreign_text_is_refused_in_words() {
        assert!(
            IdDigits::parse("0a1b2c")
                .unwrap_err()
                .contains("at least 8")
        );
        assert!(
            IdDigits::parse("task-123456789")
                .unwrap_err()
                .contains("not a hex digit")
        );
        assert!(IdDigits::parse(&"a".repeat(33)).is_err());
        assert!(
            IdDigits::parse(&format!("{}-----", "a".repeat(32)))
                .unwrap_err()
                .contains("36 characters")
        );
    }
}
