//! Topics computed once and served many times: whole-collection topics take minutes on
//! 118k papers but only change when the index does.
//!
//! [`Cache`] keys each result by a `u64` *generation* the caller passes (anything that
//! changes when the index changes: a commit counter, the manifest's build time) and the
//! run's [`TopicParams`]. The first caller of a key computes; concurrent callers of the
//! same key wait for that one computation instead of starting their own (each key has its
//! own lock, so other keys are served meanwhile). A failed or cancelled computation stores
//! nothing: the next waiter computes under its own [`Cancel`]. At most
//! [`Cache::capacity`] results are kept, the least recently used evicted first.
//!
//! The cache is synchronous (it blocks while computing); an async server calls it from
//! its blocking pool, as it does [`super::run`].

use super::layout::{self, TopicMap};
use super::lineage::History;
use super::{Error, TopicParams, TopicsReport};
use crate::cancel::Cancel;
use crate::embed::Encoder;
use crate::search::Engine;
use std::sync::{Arc, Mutex, PoisonError};

/// A report and its map.
#[derive(Debug, Clone)]
pub struct Computed {
    pub report: TopicsReport,
    pub map: TopicMap,
}

type Slot = Arc<Mutex<Option<Arc<Computed>>>>;

/// See the module doc.
#[derive(Debug)]
pub struct Cache {
    /// Most recently used last.
    entries: Mutex<Vec<(u64, TopicParams, Slot)>>,
    capacity: usize,
}

impl Default for Cache {
    /// Four entries: the whole collection at its default settings plus a few others.
    fn default() -> Cache {
        Cache::new(4)
    }
}

impl Cache {
    /// A cache of at most `capacity` results (at least one).
    pub fn new(capacity: usize) -> Cache {
        Cache {
            entries: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Results held now.
    pub fn len(&self) -> usize {
        self.lock().iter().filter(|(_, _, s)| filled(s)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The result of `params` at `generation` if it is computed already (never waits).
    pub fn peek(&self, generation: u64, params: &TopicParams) -> Option<Arc<Computed>> {
        let entries = self.lock();
        let (_, _, slot) = entries
            .iter()
            .find(|(g, p, _)| *g == generation && p == params)?;
        // A slot being computed is locked: not ready, and not worth waiting for here.
        let held = slot.try_lock().ok()?;
        held.clone()
    }

    /// The report and map of `params` at `generation`: from the cache, or computed by
    /// [`super::run`] and [`layout::map`] (see the module doc).
    ///
    /// # Errors
    /// As [`super::run`] and [`layout::map`]; errors are not cached.
    pub fn get_or_run(
        &self,
        generation: u64,
        engine: &Engine,
        params: &TopicParams,
        encoder: &dyn Encoder,
        cancel: &Cancel,
    ) -> Result<Arc<Computed>, Error> {
        self.get_or_compute(generation, params, || {
            // Ids continue those of the selection's last recorded run (`topics`, `sync`),
            // read, not written: the page's topic 12 is the digest's topic 12.
            let history = History::for_index(engine.index().path(), params);
            let previous = history.load().unwrap_or_else(|e| {
                tracing::warn!("{e}; topics numbered afresh");
                None
            });
            let with_preference = TopicParams {
                prefer_k: previous.as_ref().map(|p| p.topics.len()),
                ..params.clone()
            };
            let mut report = super::run(engine, &with_preference, encoder, cancel)?;
            if previous.is_some() {
                history.apply(&mut report, previous.as_ref(), engine.index().generation());
            }
            cancel.check()?;
            let map = layout::map(&report, engine.index())?;
            Ok(Computed { report, map })
        })
    }

    /// As [`Cache::get_or_run`] with any computation (tests and other front ends).
    ///
    /// # Errors
    /// Whatever `compute` returns.
    pub fn get_or_compute(
        &self,
        generation: u64,
        params: &TopicParams,
        compute: impl FnOnce() -> Result<Computed, Error>,
    ) -> Result<Arc<Computed>, Error> {
        let slot = {
            let mut entries = self.lock();
            let pos = entries
                .iter()
                .position(|(g, p, _)| *g == generation && p == params);
            let entry = match pos {
                Some(i) => entries.remove(i),
                None => (generation, params.clone(), Slot::default()),
            };
            let slot = entry.2.clone();
            entries.push(entry);
            // Evict the least recently used; a slot being computed stays alive in the
            // hands of its waiters and is simply not found again.
            if entries.len() > self.capacity {
                let extra = entries.len() - self.capacity;
                entries.drain(..extra);
            }
            slot
        };
        // One computation per key: waiters block here until it is done.
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(done) = held.as_ref() {
            return Ok(done.clone());
        }
        let done = Arc::new(compute()?);
        *held = Some(done.clone());
        Ok(done)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, TopicParams, Slot)>> {
        // The list is only read and reordered under the lock; a panic elsewhere leaves it
        // consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn filled(slot: &Slot) -> bool {
    slot.try_lock().map(|s| s.is_some()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::{ClusteringReport, SelectionReport, SortBy};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn computed() -> Computed {
        Computed {
            report: TopicsReport {
                topics: Vec::new(),
                selection: SelectionReport {
                    query: None,
                    mode: crate::topics::Mode::All,
                    rule: String::new(),
                    collection: 0,
                    papers: 0,
                    lexical: 0,
                    semantic: 0,
                    both: 0,
                    threshold: None,
                    outside_window: None,
                },
                clustering: ClusteringReport {
                    k: 0,
                    k_mode: "auto",
                    seed: 0,
                    silhouettes: Vec::new(),
                    sort: SortBy::Size,
                    growth: None,
                },
                history: None,
            },
            map: TopicMap::default(),
        }
    }

    #[test]
    fn concurrent_callers_share_one_computation() {
        let cache = Cache::new(2);
        let runs = AtomicUsize::new(0);
        let params = TopicParams::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    cache
                        .get_or_compute(7, &params, || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            Ok(computed())
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn errors_are_not_cached_and_old_generations_are_evicted() {
        let cache = Cache::new(2);
        let params = TopicParams::default();
        let e = cache.get_or_compute(1, &params, || Err(crate::cancel::Cancelled.into()));
        assert!(matches!(e, Err(Error::Cancelled(_))));
        assert_eq!(cache.len(), 0);
        let runs = AtomicUsize::new(0);
        let count = || {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(computed())
        };
        cache.get_or_compute(1, &params, count).unwrap();
        cache.get_or_compute(1, &params, count).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // A new generation, then another key: generation 1 is the least recently used.
        cache.get_or_compute(2, &params, count).unwrap();
        let other = TopicParams {
            seed: 3,
            ..TopicParams::default()
        };
        cache.get_or_compute(2, &other, count).unwrap();
        assert_eq!(cache.len(), 2);
        cache.get_or_compute(1, &params, count).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }
}
