//! Conversion of the domain [`Mutation`] into the WIT record a mapper receives.
//! Timestamps become RFC 3339 UTC text with milliseconds ([`format_time`]).

use crate::domain::task::format_time;
use crate::domain::{Action, FieldChange, Mutation, Origin, Task};

use super::bindings::pakaura::events::types as wit;

/// The WIT form of `m`.
pub(crate) fn to_wit(m: &Mutation) -> wit::Mutation {
    wit::Mutation {
        id: m.id.to_string(),
        action: action(m.action),
        task: task(&m.task),
        changes: m.changes.iter().map(change).collect(),
        origin: origin(m.origin),
        correlation_id: m.correlation_id.clone(),
        occurred_at: format_time(&m.occurred_at),
    }
}

fn action(a: Action) -> wit::Action {
    match a {
        Action::Created => wit::Action::Created,
        Action::Updated => wit::Action::Updated,
        Action::Completed => wit::Action::Completed,
        Action::Uncompleted => wit::Action::Uncompleted,
        Action::Deleted => wit::Action::Deleted,
    }
}

fn origin(o: Origin) -> wit::Origin {
    match o {
        Origin::Rest => wit::Origin::Rest,
        Origin::Mcp => wit::Origin::Mcp,
    }
}

fn task(t: &Task) -> wit::Task {
    wit::Task {
        id: t.id.to_string(),
        user_id: t.user_id.clone(),
        title: t.title.clone(),
        description: t.description.clone(),
        completed: t.completed,
        due_date: t.due_date.as_ref().map(format_time),
        created_at: format_time(&t.created_at),
        updated_at: format_time(&t.updated_at),
    }
}

fn change(c: &FieldChange) -> wit::FieldChange {
    wit::FieldChange {
        field: c.field.clone(),
        old_value: c.old_value.clone(),
        new_value: c.new_value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn timestamps_and_ids_use_the_canonical_text_forms() {
        let at = Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap();
        let m = Mutation {
            id: Uuid::nil(),
            action: Action::Updated,
            task: Task {
                id: Uuid::from_u128(1),
                user_id: "u".into(),
                title: "t".into(),
                description: None,
                completed: false,
                due_date: Some(at),
                created_at: at,
                updated_at: at,
            },
            changes: vec![FieldChange::new("title", &"a", &"b")],
            origin: Origin::Mcp,
            correlation_id: "c".into(),
            occurred_at: at,
        };
        let w = to_wit(&m);
        assert_eq!(w.id, "00000000-0000-0000-0000-000000000000");
        assert_eq!(w.task.id, "00000000-0000-0000-0000-000000000001");
        assert_eq!(w.occurred_at, "2026-02-09T14:30:00.000Z");
        assert_eq!(w.task.due_date.as_deref(), Some("2026-02-09T14:30:00.000Z"));
        assert_eq!(w.changes[0].old_value, "\"a\"");
        assert!(matches!(w.action, wit::Action::Updated));
        assert!(matches!(w.origin, wit::Origin::Mcp));
    }
}
