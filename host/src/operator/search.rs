//! What the operator types into a search: an id or the start of one (as the console's
//! tables show them, eight characters), parsed once into what the store can match.

/// An id, or its first digits: at least 8 hex digits (dashes as in a UUID are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPrefix {
    /// The lower-case hex digits, without dashes (8 to 32).
    digits: String,
}

/// Fewest digits a prefix must have (the console shows eight).
pub const MIN_PREFIX: usize = 8;

impl IdPrefix {
    /// Parses `raw`, or says what is wrong with it in words an operator understands.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
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
        if digits.len() < MIN_PREFIX {
            return Err(format!(
                "give at least {MIN_PREFIX} characters of the id (got {})",
                digits.len()
            ));
        }
        if digits.len() > 32 {
            return Err("an id has at most 32 hex digits".to_owned());
        }
        Ok(Self { digits })
    }

    /// Whether it is a whole id.
    pub fn is_whole(&self) -> bool {
        self.digits.len() == 32
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

    /// The start of the id as text (`8-4-4-4-12` with dashes), for ids stored as text.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(36);
        for (i, c) in self.digits.chars().enumerate() {
            if matches!(i, 8 | 12 | 16 | 20) {
                out.push('-');
            }
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digits_make_a_range_of_uuids() {
        let p = IdPrefix::parse(" 0A1B2C3D ").unwrap();
        assert!(!p.is_whole());
        let (lo, hi) = p.range();
        assert_eq!(lo.to_string(), "0a1b2c3d-0000-0000-0000-000000000000");
        assert_eq!(hi.to_string(), "0a1b2c3d-ffff-ffff-ffff-ffffffffffff");
        assert_eq!(p.text(), "0a1b2c3d");
        assert_eq!(
            IdPrefix::parse("0a1b2c3d-4e5f").unwrap().text(),
            "0a1b2c3d-4e5f"
        );
    }

    #[test]
    fn a_whole_id_is_its_own_range() {
        let id = uuid::Uuid::new_v4();
        let p = IdPrefix::parse(&id.to_string()).unwrap();
        assert!(p.is_whole());
        assert_eq!(p.range(), (id, id));
        assert_eq!(p.text(), id.to_string());
    }

    #[test]
    fn short_or_foreign_text_is_refused_in_words() {
        assert!(
            IdPrefix::parse("0a1b2c")
                .unwrap_err()
                .contains("at least 8")
        );
        assert!(
            IdPrefix::parse("task-123456789")
                .unwrap_err()
                .contains("not a hex digit")
        );
        assert!(IdPrefix::parse(&"a".repeat(33)).is_err());
    }
}
