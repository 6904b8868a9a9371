//! Dead letters at scale for the operator: a filtered, paged, grouped list; one letter
//! followed after its replay (published, still waiting, or refused again and replaced
//! by a new letter); and resolving a selection (ids, or every letter a filter matches)
//! in one call, letter by letter, with each one's result.

use serde::Serialize;
use uuid::Uuid;

use super::{LetterWithMutation, Operator, parsed};
use crate::relay::{ReplayError, Replayed, RetriedLetter, Skipped};
use crate::store::{
    DeadLetter, DeadLetterKind, EnvelopeState, LetterFilter, LetterGroup, LetterPage, StoreError,
};

/// Most groups one listing returns.
const GROUPS: i64 = 20;

/// One page of the letters a filter matches, their total and their groups.
#[derive(Debug, Clone)]
pub struct LetterSearch {
    pub total: i64,
    pub letters: Vec<LetterWithMutation>,
    pub groups: Vec<LetterGroup>,
}

/// Where a letter stands now: open, or resolved and what became of its event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LetterFollow {
    pub letter: DeadLetter,
    /// A publish letter's envelope state now (`pending`: queued again, waiting or being
    /// retried; `published`; `dead`: refused again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_state: Option<EnvelopeState>,
    /// The letter that replaced this one when its replay was refused again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<DeadLetter>,
    /// In a word: `open`, `skipped`, `queued` (replayed, not published yet),
    /// `published`, `refused_again`, or `mapped` (a mapping letter mapped again: its new
    /// envelopes are in `GET /admin/envelopes?task_id=`).
    pub status: &'static str,
}

/// What resolving a selection did, letter by letter.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BulkReplayed {
    /// The letters replayed, oldest first.
    pub replayed: Vec<Replayed>,
    /// The letters whose replay failed (they stay open), with why.
    pub failed: Vec<RetriedLetter>,
}

/// What skipping a selection did, letter by letter.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BulkSkipped {
    pub skipped: Vec<Skipped>,
    pub failed: Vec<RetriedLetter>,
}

/// A selection of letters: these ids, or every open letter `filter` matches.
#[derive(Debug, Clone)]
pub enum Selection {
    Ids(Vec<Uuid>),
    Matching(LetterFilter),
}

/// Most letters one bulk call resolves.
pub const BULK_LIMIT: i64 = 1_000;

impl Operator {
    /// One page of the open letters `filter` matches, with their total and groups.
    pub async fn search_letters(
        &self,
        filter: &LetterFilter,
        page: LetterPage,
    ) -> Result<LetterSearch, StoreError> {
        let db = &self.inner.db;
        let rows = db.search_letters(filter, page).await?;
        let total = db.count_letters(filter).await?;
        let groups = db.letter_groups(filter, GROUPS).await?;
        let ids: Vec<Uuid> = rows.iter().map(|(l, _)| l.id).collect();
        let mut holds = db.letter_holds(&ids).await?;
        let letters = rows
            .into_iter()
            .map(|(letter, mutation)| LetterWithMutation {
                hold: holds.remove(&letter.id),
                letter,
                mutation: mutation.as_deref().map(parsed),
            })
            .collect();
        Ok(LetterSearch {
            total,
            letters,
            groups,
        })
    }

    /// Letter `id` and what became of its event; `None` if there is no such letter.
    pub async fn follow_letter(&self, id: Uuid) -> Result<Option<LetterFollow>, StoreError> {
        let db = &self.inner.db;
        let Some(letter) = db.dead_letter(id).await? else {
            return Ok(None);
        };
        // The envelope first: a refusal parks it and writes the new letter in one
        // transaction, so once it reads dead the new letter is there to read too. A
        // refusal committed between the two reads shows the new letter beside a state
        // read before it: read the state again (the parking committed by then).
        let envelope_state = |db: &crate::store::Db| {
            let envelope = letter.envelope_id.clone();
            let db = db.clone();
            async move {
                match envelope {
                    Some(envelope) => {
                        Ok::<_, StoreError>(db.envelope(&envelope).await?.map(|e| e.state))
                    }
                    None => Ok(None),
                }
            }
        };
        let mut state = envelope_state(db).await?;
        let replaced_by = db.replacement_of(id).await?;
        if replaced_by.is_some() && state == Some(EnvelopeState::Pending) {
            state = envelope_state(db).await?;
        }
        let envelope_state = state;
        let status = follow_status(&letter, envelope_state, replaced_by.as_ref());
        Ok(Some(LetterFollow {
            letter,
            envelope_state,
            replaced_by,
            status,
        }))
    }

    /// The ids `selection` names (a filter: its open letters, oldest first).
    async fn selected(&self, selection: Selection) -> Result<Vec<Uuid>, StoreError> {
        match selection {
            Selection::Ids(ids) => Ok(ids),
            Selection::Matching(filter) => self.inner.db.letter_ids(&filter, BULK_LIMIT).await,
        }
    }

    /// Resolves each letter of `selection` with `resolve`, one at a time, oldest first:
    /// what it resolved, and the letters it could not resolve with why (one failing does
    /// not stop the others; a store failure does).
    async fn each_letter<T, Fut>(
        &self,
        selection: Selection,
        resolve: impl Fn(Uuid) -> Fut,
    ) -> Result<(Vec<T>, Vec<RetriedLetter>), ReplayError>
    where
        Fut: std::future::Future<Output = Result<T, ReplayError>>,
    {
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for id in self.selected(selection).await? {
            match resolve(id).await {
                Ok(r) => done.push(r),
                Err(ReplayError::Store(e)) => return Err(ReplayError::Store(e)),
                Err(e) => failed.push(RetriedLetter {
                    id,
                    reason: e.to_string(),
                }),
            }
        }
        Ok((done, failed))
    }

    /// Replays each letter of `selection` for operator `by`, one at a time, oldest first;
    /// one failing does not stop the others.
    pub async fn replay_many(
        &self,
        selection: Selection,
        by: &str,
    ) -> Result<BulkReplayed, ReplayError> {
        let relay = &self.inner.relay;
        let (replayed, failed) = self
            .each_letter(selection, |id| relay.replay(id, by))
            .await?;
        tracing::info!(
            by,
            replayed = replayed.len(),
            failed = failed.len(),
            "a selection of dead letters replayed"
        );
        Ok(BulkReplayed { replayed, failed })
    }

    /// Skips each letter of `selection` for operator `by`, saying `reason`.
    pub async fn skip_many(
        &self,
        selection: Selection,
        by: &str,
        reason: &str,
    ) -> Result<BulkSkipped, ReplayError> {
        let relay = &self.inner.relay;
        let (skipped, failed) = self
            .each_letter(selection, |id| relay.skip(id, by, reason))
            .await?;
        tracing::info!(
            by,
            skipped = skipped.len(),
            failed = failed.len(),
            "a selection of dead letters skipped"
        );
        Ok(BulkSkipped { skipped, failed })
    }
}

/// A letter's standing in a word (see [`LetterFollow::status`]).
fn follow_status(
    letter: &DeadLetter,
    envelope: Option<EnvelopeState>,
    replaced_by: Option<&DeadLetter>,
) -> &'static str {
    match letter.resolution.as_deref() {
        None => "open",
        Some("skipped") => "skipped",
        Some(_) if replaced_by.is_some() => "refused_again",
        Some(_) => match (letter.kind, envelope) {
            (DeadLetterKind::Publish, Some(EnvelopeState::Published)) => "published",
            (DeadLetterKind::Publish, Some(EnvelopeState::Dead)) => "refused_again",
            (DeadLetterKind::Publish, _) => "queued",
            // A mapping letter replayed: its mutation was mapped again; its envelopes are
            // new ones, each followed on its own.
            (DeadLetterKind::Mapping, _) => "mapped",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(kind: DeadLetterKind, resolution: Option<&str>) -> DeadLetter {
        DeadLetter {
            id: Uuid::nil(),
            mutation_id: Uuid::nil(),
            kind,
            mapper: None,
            envelope_id: None,
            reason: String::new(),
            attempts: 1,
            created_at: chrono::Utc::now(),
            resolved_at: None,
            task_id: None,
            topic: None,
            event_type: None,
            resolution: resolution.map(str::to_owned),
            resolved_by: None,
            resolution_note: None,
            replaces: None,
        }
    }

    #[test]
    fn a_replay_is_published_only_when_its_envelope_is() {
        let replayed = letter(DeadLetterKind::Publish, Some("replayed"));
        assert_eq!(
            follow_status(&replayed, Some(EnvelopeState::Pending), None),
            "queued"
        );
        assert_eq!(
            follow_status(&replayed, Some(EnvelopeState::Published), None),
            "published"
        );
        let again = letter(DeadLetterKind::Publish, None);
        assert_eq!(
            follow_status(&replayed, Some(EnvelopeState::Dead), Some(&again)),
            "refused_again"
        );
        assert_eq!(
            follow_status(&letter(DeadLetterKind::Publish, None), None, None),
            "open"
        );
        assert_eq!(
            follow_status(
                &letter(DeadLetterKind::Mapping, Some("skipped")),
                None,
                None
            ),
            "skipped"
        );
    }
}
