//! Domain types shared by the API, the outbox and the mapper runtime, and the task
//! rules: `fields` (what a title, description and due date may be), `change` (what
//! creating, patching and completing make of a task), `mutation` (the record every
//! committed change leaves for the relay), `page` (reading tasks a page at a time),
//! `text` (what outside text may be stored).

pub mod change;
pub mod fields;
pub mod mutation;
pub mod page;
pub mod task;
pub mod text;

pub use change::{Changed, NewTask, TaskPatch};
pub use fields::{Description, DueDate, TaskTitle, ValidationError};
pub use mutation::{Action, FieldChange, Mutation, MutationContext, Origin};
pub use page::{ListOrder, Page, PageRequest};
pub use task::Task;
