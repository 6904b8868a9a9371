//! What a new mapper set changes against the live one: mappers added, removed,
//! changed (another component: version, digest or topics), unchanged, and whether the
//! call order moved. A pure function of the two listings, for the reload preview and
//! the reload history.

use serde::Serialize;

use super::load::MapperListing;

/// One mapper as a reload compares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MapperVersion {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub topics: Vec<String>,
    pub file: String,
}

impl MapperVersion {
    fn of(m: &MapperListing) -> Self {
        Self {
            name: m.name.clone(),
            version: m.version.clone(),
            sha256: m.sha256.clone(),
            topics: m.topics.clone(),
            file: m.file.clone(),
        }
    }
}

/// A mapper in both sets whose component differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChangedMapper {
    pub before: MapperVersion,
    pub after: MapperVersion,
}

/// What a new set changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SetChanges {
    pub added: Vec<MapperVersion>,
    pub removed: Vec<MapperVersion>,
    pub changed: Vec<ChangedMapper>,
    /// The names of the mappers that stay as they are (their counters survive).
    pub unchanged: Vec<String>,
    /// Whether the mappers both sets hold are called in another order.
    pub reordered: bool,
}

impl SetChanges {
    /// The changes from `before` (the live set) to `after`.
    pub fn between(before: &[MapperListing], after: &[MapperListing]) -> Self {
        let find = |set: &[MapperListing], name: &str| set.iter().find(|m| m.name == name).cloned();
        let mut changes = Self::default();
        for m in after {
            match find(before, &m.name) {
                None => changes.added.push(MapperVersion::of(m)),
                Some(old) if old.sha256 == m.sha256 => changes.unchanged.push(m.name.clone()),
                Some(old) => changes.changed.push(ChangedMapper {
                    before: MapperVersion::of(&old),
                    after: MapperVersion::of(m),
                }),
            }
        }
        for m in before {
            if find(after, &m.name).is_none() {
                changes.removed.push(MapperVersion::of(m));
            }
        }
        let common = |set: &[MapperListing], other: &[MapperListing]| -> Vec<String> {
            set.iter()
                .filter(|m| other.iter().any(|o| o.name == m.name))
                .map(|m| m.name.clone())
                .collect()
        };
        changes.reordered = common(before, after) != common(after, before);
        changes
    }

    /// Whether the new set is the live one.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.reordered
    }

    /// One line: "no change", or what changed.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no change".to_owned();
        }
        let names = |v: &[MapperVersion]| {
            v.iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("added {}", names(&self.added)));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", names(&self.removed)));
        }
        for c in &self.changed {
            parts.push(format!(
                "changed {} {} → {}{}",
                c.after.name,
                c.before.version,
                c.after.version,
                if c.before.version == c.after.version {
                    " (another build)"
                } else {
                    ""
                }
            ));
        }
        if self.reordered {
            parts.push("call order changed".to_owned());
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapper::stats::CallStats;

    fn m(name: &str, version: &str, sha: &str) -> MapperListing {
        MapperListing {
            name: name.into(),
            version: version.into(),
            topics: vec!["task-events".into()],
            event_types: Vec::new(),
            file: format!("{name}.wasm"),
            sha256: sha.into(),
            loaded_at: chrono::Utc::now(),
            stats: CallStats::default().snapshot(0),
        }
    }

    #[test]
    fn the_same_set_changes_nothing() {
        let set = [m("a", "1", "x"), m("b", "1", "y")];
        let c = SetChanges::between(&set, &set);
        assert!(c.is_empty());
        assert_eq!(c.unchanged, ["a", "b"]);
        assert_eq!(c.summary(), "no change");
    }

    #[test]
    fn added_removed_changed_and_reordered_are_told_apart() {
        let before = [m("a", "1", "x"), m("b", "1", "y"), m("gone", "1", "z")];
        let after = [m("b", "2", "y2"), m("a", "1", "x"), m("new", "1", "n")];
        let c = SetChanges::between(&before, &after);
        assert_eq!(c.added[0].name, "new");
        assert_eq!(c.removed[0].name, "gone");
        assert_eq!(c.changed[0].before.version, "1");
        assert_eq!(c.changed[0].after.version, "2");
        assert_eq!(c.unchanged, ["a"]);
        assert!(c.reordered);
        assert_eq!(
            c.summary(),
            "added new; removed gone; changed b 1 → 2; call order changed"
        );
    }
}
