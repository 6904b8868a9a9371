//! [`MapperRuntime`]: the process's one `wasmtime` engine, its epoch ticker and the
//! sandbox's linker shared by every mapper.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::Linker;
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel,
    PoolingAllocationConfig, Store,
};

use super::config::MapperConfig;
use super::error::{LoadError, MapFailure};
use super::limits::Limits;
use super::sandbox::{self, LogBudget, SandboxState};
use super::settings::Settings;

/// How often the epoch advances; deadlines are measured in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Most mapper instances alive at once (calls in flight and instances kept for reuse);
/// the pooling allocator reserves this many slots. An instantiation past it waits for a
/// slot rather than failing.
const MAX_INSTANCES: u32 = 128;
/// Longest a call waits for a free instance slot before it fails as busy (the pool's
/// slots are all taken by calls in flight and kept instances of many mappers).
pub(crate) const SLOT_WAIT: Duration = Duration::from_secs(5);
/// Core instances, memories and tables one component instance may create (the
/// sandbox's limiter enforces the same caps per store).
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MEMORIES_PER_COMPONENT: u32 = 8;
const TABLES_PER_COMPONENT: u32 = 16;
/// The largest runtime metadata of one (core or component) instance. Interpreters
/// compiled to components (Python, JavaScript) need several MiB.
const INSTANCE_METADATA: usize = 16 << 20;
/// How much of a memory's (and a table's) contents is put back by copying when its
/// slot is freed, on kernels with the `PAGEMAP_SCAN` ioctl (Linux 6.7+), which finds
/// the pages an instance wrote: those are restored from the memory image or zeroed in
/// place (the same contents a new instance would see), so the next instance in the
/// slot takes no page faults and the free takes no `madvise`. Written pages past this
/// budget are decommitted as before. Elsewhere nothing is kept resident: without the
/// scan the whole budget would be copied on every free.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;
const TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// The compile cache's size; older entries are removed past it (the Helm chart's cache
/// volume holds 512 MiB).
const CACHE_SIZE_LIMIT: u64 = 384 << 20;

/// The engine, linker and epoch ticker shared by all mappers. Cheap to clone.
///
/// Create one per process and hand it to every [`super::MapperRegistry`] or
/// [`super::LoadedMapper`]. The epoch ticker thread stops when the last clone (and
/// the last mapper loaded with it) is dropped.
#[derive(Clone)]
pub struct MapperRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// The compile cache, for its hit and miss counts.
    cache: Option<Cache>,
    linker: Linker<SandboxState>,
    slots: InstanceSlots,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for MapperRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapperRuntime").finish_non_exhaustive()
    }
}

impl MapperRuntime {
    /// Creates the engine (component model, epoch interruption, Cranelift at
    /// `speed`, the pooling instance allocator with copy-on-write memory images, the
    /// compile cache), the linker (WASI p2 denying everything, plus the `host`
    /// interface) and starts the epoch ticker.
    pub fn new(options: &RuntimeOptions) -> Result<Self, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::new();
        let memory_limit = usize::try_from(options.memory_limit).unwrap_or(usize::MAX);
        pool.total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES * 8)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 4)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memories_per_module(MEMORIES_PER_COMPONENT)
            .max_tables_per_module(TABLES_PER_COMPONENT)
            .table_elements(1 << 16)
            .max_core_instance_size(INSTANCE_METADATA)
            .max_component_instance_size(INSTANCE_METADATA)
            .max_memory_size(memory_limit);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .memory_init_cow(true);
        let cache = options.cache_dir.as_ref().and_then(|dir| {
            let mut cache = CacheConfig::new();
            cache
                .with_directory(dir)
                .with_files_total_size_soft_limit(CACHE_SIZE_LIMIT);
            // The cache only saves time: a folder that cannot be created or written
            // (a read-only root filesystem with no volume mounted) costs a compile per
            // start and reload, not the start-up.
            match Cache::new(cache) {
                Ok(cache) => Some(cache),
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::warn!(
                        dir = %dir.display(), %error,
                        "MAPPER_CACHE_DIR is not usable; mappers are compiled at every start and reload"
                    );
                    None
                }
            }
        });
        config.cache(cache.clone());
        let engine = engine(&mut config, pool).map_err(engine_error)?;
        let linker = sandbox::linker(&engine).map_err(engine_error)?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                cache,
                linker,
                slots: InstanceSlots::new(MAX_INSTANCES as usize),
                _ticker: ticker,
            }),
        })
    }

    /// Takes one of the pool's instance slots, waiting up to [`SLOT_WAIT`] for one if all
    /// are taken ([`MapFailure::Busy`] after that); the slot is given back when the
    /// returned guard drops (with the instance).
    pub(crate) fn instance_slot(&self) -> Result<InstanceSlot, MapFailure> {
        if !self.inner.slots.take(SLOT_WAIT) {
            return Err(MapFailure::Busy { waited: SLOT_WAIT });
        }
        Ok(InstanceSlot {
            runtime: self.clone(),
        })
    }

    /// The compile cache's hits and misses so far (a miss is a compilation whose result
    /// was stored), or `None` when there is no cache.
    pub(crate) fn cache_counts(&self) -> Option<(usize, usize)> {
        self.inner
            .cache
            .as_ref()
            .map(|c| (c.cache_hits(), c.cache_misses()))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<SandboxState> {
        &self.inner.linker
    }

    /// A fresh store for one call: empty WASI context, memory cap, epoch deadline.
    pub(crate) fn new_store(
        &self,
        mapper: Arc<str>,
        settings: Arc<Settings>,
        log_budget: Arc<LogBudget>,
        limits: &Limits,
        wall_clock: Option<SystemTime>,
    ) -> Store<SandboxState> {
        SandboxState::store(
            &self.inner.engine,
            mapper,
            settings,
            log_budget,
            limits,
            deadline_ticks(limits.deadline),
            wall_clock,
        )
    }

    /// Prepares a reused instance's store for one more call: a new deadline from now,
    /// a new `host.log` budget.
    pub(crate) fn begin_call(&self, store: &mut Store<SandboxState>, limits: &Limits) {
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        store.data_mut().begin_call(limits);
    }
}

/// The engine with the pooling allocator `pool`, its freed slots reset in place when
/// the kernel can say which pages were written (see [`MEMORY_KEEP_RESIDENT`]), else
/// decommitted.
fn engine(config: &mut Config, mut pool: PoolingAllocationConfig) -> wasmtime::Result<Engine> {
    let mut in_place = pool.clone();
    in_place
        .pagemap_scan(Enabled::Yes)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(in_place));
    match Engine::new(config) {
        Ok(engine) => {
            tracing::debug!("mapper memories are reset in place (PAGEMAP_SCAN)");
            Ok(engine)
        }
        Err(e) => {
            tracing::debug!(error = %format!("{e:#}"), "mapper memories are reset by madvise");
            pool.pagemap_scan(Enabled::No);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            Engine::new(config)
        }
    }
}

/// How the runtime is built.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// `MAPPER_MEMORY_LIMIT`: sizes the pool's memories.
    pub memory_limit: u64,
    /// Where compiled components are cached (`MAPPER_CACHE_DIR`); `None`: compile at
    /// every load.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeOptions {
    /// The options `config` describes.
    pub fn from_config(config: &MapperConfig) -> Self {
        Self {
            memory_limit: config.mapper_memory_limit,
            cache_dir: config.cache_dir(),
        }
    }
}

impl Default for RuntimeOptions {
    /// The largest memory limit, no cache.
    fn default() -> Self {
        Self {
            memory_limit: 4 << 30,
            cache_dir: None,
        }
    }
}

/// Counts the instances alive, so there are never more than the pool has slots.
#[derive(Debug)]
struct InstanceSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl InstanceSlots {
    fn new(slots: usize) -> Self {
        Self {
            free: Mutex::new(slots),
            freed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting at most `bound` for one to be freed; false when none was.
    fn take(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *free -= 1;
        true
    }

    fn give_back(&self) {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.freed.notify_one();
    }
}

/// One instance slot taken from the runtime; given back when dropped.
pub(crate) struct InstanceSlot {
    runtime: MapperRuntime,
}

impl Drop for InstanceSlot {
    fn drop(&mut self) {
        self.runtime.inner.slots.give_back();
    }
}

/// Ticks for `deadline`, rounded up, plus one for the partly elapsed current tick.
fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX / 2) + 1
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`]; dropping it
/// stops and joins the thread.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, LoadError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mapper-epoch".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender disconnects the channel and ends the loop.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapper::sandbox::MONOTONIC_CLOCK;

    #[test]
    fn deadline_ticks_round_up_and_add_one() {
        assert_eq!(deadline_ticks(Duration::from_millis(100)), 21);
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 2);
    }

    #[test]
    fn the_clock_override_targets_the_wasi_instance() {
        // Re-opening the instance and defining `now` again must fail: the instance
        // we shadowed is the one WASI defined, not a fresh empty one.
        let runtime = MapperRuntime::new(&RuntimeOptions::default()).unwrap();
        let mut linker = runtime.linker().clone();
        let mut clock = linker.instance(MONOTONIC_CLOCK).unwrap();
        let redefined = clock.func_wrap("now", |_, (): ()| Ok((0u64,)));
        assert!(
            redefined.is_err(),
            "WASI's monotonic-clock instance not found"
        );
    }

    #[test]
    fn the_ticker_stops_when_dropped() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = EpochTicker::start(engine).unwrap();
        std::thread::sleep(EPOCH_TICK * 2);
        // Returns (rather than hanging the test) because the thread ends.
        drop(ticker);
    }
}
