//! The task rules: what creating, patching and completing a task make of it, and which
//! fields a change touched. Pure functions of their inputs (the time is given), so the
//! rules are tested without a database; the task service runs them inside the store's
//! transaction, on the task as locked there.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::mutation::FieldChange;
use super::task::{Task, format_time};
use super::{Description, DueDate, TaskTitle};

/// A validated new task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: TaskTitle,
    pub description: Option<Description>,
    pub due_date: Option<DueDate>,
}

/// A validated partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPatch {
    pub title: Option<TaskTitle>,
    pub description: Option<Option<Description>>,
    pub due_date: Option<Option<DueDate>>,
}

/// A task after a change, and the fields the change touched (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub task: Task,
    pub changes: Vec<FieldChange>,
}

impl Task {
    /// A new task of `user`'s, created at `at`.
    pub fn create(user: &str, new: NewTask, at: DateTime<Utc>) -> Task {
        Task {
            // Time-ordered: a new task's id goes at the end of every index keyed on it.
            id: Uuid::now_v7(),
            user_id: user.to_owned(),
            title: new.title.into_inner(),
            description: new.description.map(Description::into_inner),
            completed: false,
            due_date: new.due_date.map(DueDate::get),
            created_at: at,
            updated_at: at,
        }
    }

    /// The task after `patch`, applied at `at`; `None` when the patch changes nothing
    /// (a value set to what it already is is no change).
    pub fn apply(&self, patch: TaskPatch, at: DateTime<Utc>) -> Option<Changed> {
        let mut after = self.clone();
        let mut changes = Vec::new();
        if let Some(title) = patch.title.map(TaskTitle::into_inner)
            && title != self.title
        {
            changes.push(FieldChange::new("title", &self.title, &title));
            after.title = title;
        }
        if let Some(description) = patch.description.map(|d| d.map(Description::into_inner))
            && description != self.description
        {
            changes.push(FieldChange::new(
                "description",
                &self.description,
                &description,
            ));
            after.description = description;
        }
        if let Some(due_date) = patch.due_date.map(|d| d.map(DueDate::get))
            && due_date != self.due_date
        {
            let text = |d: &Option<DateTime<Utc>>| d.as_ref().map(format_time);
            changes.push(FieldChange::new(
                "due_date",
                &text(&self.due_date),
                &text(&due_date),
            ));
            after.due_date = due_date;
        }
        if changes.is_empty() {
            return None;
        }
        after.updated_at = at;
        Some(Changed {
            task: after,
            changes,
        })
    }

    /// The task marked complete or incomplete at `at`; `None` when it already is.
    pub fn with_completed(&self, completed: bool, at: DateTime<Utc>) -> Option<Task> {
        (self.completed != completed).then(|| Task {
            completed,
            updated_at: at,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::now;

    fn task() -> Task {
        let new = NewTask {
            title: TaskTitle::parse("water plants").unwrap(),
            description: None,
            due_date: Some(DueDate::parse("2026-03-01T09:00:00Z").unwrap()),
        };
        Task::create("alice", new, now())
    }

    #[test]
    fn a_new_task_is_open_and_stamped_once() {
        let t = task();
        assert_eq!(t.user_id, "alice");
        assert!(!t.completed);
        assert_eq!(t.created_at, t.updated_at);
    }

    #[test]
    fn a_patch_reports_exactly_the_fields_it_changed() {
        let before = task();
        let at = before.updated_at + chrono::Duration::seconds(1);
        let patch = TaskPatch {
            title: Some(TaskTitle::parse("water plants").unwrap()),
            description: Some(Description::parse("the ficus").unwrap()),
            due_date: Some(None),
        };
        let changed = before.apply(patch, at).expect("two fields change");
        let fields: Vec<&str> = changed.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["description", "due_date"],
            "the same title is no change"
        );
        assert_eq!(changed.changes[0].old_value, "null");
        assert_eq!(changed.changes[0].new_value, "\"the ficus\"");
        assert_eq!(changed.changes[1].old_value, "\"2026-03-01T09:00:00.000Z\"");
        assert_eq!(changed.changes[1].new_value, "null");
        assert_eq!(changed.task.due_date, None);
        assert_eq!(changed.task.updated_at, at);
        assert_eq!(changed.task.created_at, before.created_at);
    }

    #[test]
    fn a_patch_that_changes_nothing_is_no_change() {
        let before = task();
        assert_eq!(before.apply(TaskPatch::default(), now()), None);
        let same = TaskPatch {
            due_date: Some(Some(DueDate::parse("2026-03-01T10:00:00+01:00").unwrap())),
            ..TaskPatch::default()
        };
        assert_eq!(
            before.apply(same, now()),
            None,
            "the same instant, another offset"
        );
    }

    #[test]
    fn completing_twice_changes_nothing_the_second_time() {
        let open = task();
        let done = open.with_completed(true, now()).expect("it was open");
        assert!(done.completed);
        assert_eq!(done.with_completed(true, now()), None);
        assert!(!done.with_completed(false, now()).unwrap().completed);
    }
}
