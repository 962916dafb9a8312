//! Look-ups allocate nothing: at benchmark scale (100,000 indicators, 50,000 assets) enriching
//! thousands of entities of every kind makes no heap allocation once the output vector has
//! room. Counted with a global allocator, so this file holds one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use riposte_domain::Canonicaliser;
use riposte_enrich::{Context, EnrichmentSet, Source, synthetic};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn enrichment_lookups_do_not_allocate_at_benchmark_scale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sizes = synthetic::Sizes::default();
    let config = synthetic::write(dir.path(), sizes).expect("write synthetic data");
    let canon = Canonicaliser::default();
    let set = EnrichmentSet::load_file(&config, &canon).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.intel().len(), sizes.indicators);
    assert_eq!(set.assets().len(), sizes.assets);
    let mut entities = synthetic::entities(sizes, 20_000);
    entities.retain_mut(|e| canon.apply(e));
    let at = "2026-01-01T00:00:00Z".parse().expect("time");

    let mut out: Vec<Context<'_>> = Vec::with_capacity(64);
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut hits = [0usize; 3];
    for e in &entities {
        out.clear();
        set.enrich(e, at, &mut out);
        for c in &out {
            match c {
                Context::Asset(_) => hits[0] += 1,
                Context::Identity(_) => hits[1] += 1,
                Context::Intel(_) => hits[2] += 1,
            }
        }
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(allocs, 0, "look-ups allocated {allocs} times");
    assert!(
        hits.iter().all(|&h| h > 100),
        "assets, identities, intel hits: {hits:?}"
    );
    let fp = set.intel().footprint();
    assert!(fp.bytes / fp.indicators < 400, "{fp:?}");
}
