//! Domain types shared by the API, the outbox and the mapper runtime.

pub mod mutation;
pub mod task;
pub mod text;

pub use mutation::{Action, FieldChange, Mutation, Origin};
pub use task::{DueDate, Task, TaskTitle, ValidationError};
