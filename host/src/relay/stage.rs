//! The one shape every relay stage has: a value that runs until its stop signal turns
//! true, given the relay's context and the wake-ups the stages send each other, and that
//! beats ([`RelayContext::beat`]) whenever it makes progress, for the watchdog. Stages
//! meet only in the database; a wake-up only says "look now" (each stage also polls),
//! so a lost one delays, never loses, work.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{Notify, watch};

use super::RelayContext;
use super::dispatch::PublishStage;
use super::housekeeping::Housekeeping;
use super::map::MapStage;
use super::vacuum::VacuumStage;

/// Wake-ups between the request path and the stages.
#[derive(Debug, Default)]
pub(super) struct Wakes {
    /// A mutation committed: the map stage looks for work.
    pub(super) mutations: Notify,
    /// Envelopes were stored or queued again: the publish stage looks for work.
    pub(super) envelopes: Notify,
}

/// What a running stage listens to.
pub(super) struct Signals {
    pub(super) wakes: Arc<Wakes>,
    /// Turns true when the relay stops; a stage finishes what it holds and returns.
    pub(super) stop: watch::Receiver<bool>,
}

/// The names of the stages a relay runs, with or without a publisher and the queue
/// vacuum (the watchdog's heartbeats).
pub(super) fn names(publishing: bool, vacuuming: bool) -> Vec<&'static str> {
    let mut names = vec![MapStage::NAME, Housekeeping::NAME];
    if publishing {
        names.push(PublishStage::NAME);
    }
    if vacuuming {
        names.push(VacuumStage::NAME);
    }
    names
}

/// A relay stage.
pub(super) trait Stage: Send {
    /// Runs until `signals.stop` turns true.
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()>;
}

/// The stages of a relay with `ctx`: mapping and housekeeping always, publishing when
/// a publisher is configured, the queue vacuum on PostgreSQL unless turned off.
pub(super) fn stages(ctx: &RelayContext) -> Vec<Box<dyn Stage>> {
    let mut stages: Vec<Box<dyn Stage>> = vec![Box::new(MapStage), Box::new(Housekeeping)];
    if let Some(publisher) = &ctx.publisher {
        stages.push(Box::new(PublishStage::new(publisher.clone())));
    }
    if VacuumStage::wanted(&ctx.db, &ctx.config) {
        stages.push(Box::new(VacuumStage));
    }
    stages
}
