//! Reading a user's tasks a page at a time, in insertion order.

use super::Task;

/// Newest first (the default) or oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Which page of a user's tasks to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Only completed (`true`) or open (`false`) tasks.
    pub completed: Option<bool>,
    pub limit: u32,
    /// The opaque cursor of the previous page's last item.
    pub after: Option<i64>,
    pub order: ListOrder,
}

/// One page of tasks and the cursor for the next page, if there is one.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Task>,
    pub next: Option<i64>,
}
