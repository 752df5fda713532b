//! rav1e's peak memory against `banatie_image::avif_memory`, the estimate a
//! derivation is refused by, on noise (the worst case: incompressible, the
//! most symbols per pixel). Native, so pointers are 64-bit (wasm32's
//! structures are smaller). Slow (a minute in release), so ignored:
//! `cargo test --release -p banatie-image --test avif_memory -- --ignored --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use banatie_core::variant::Format;

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = NOW.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
#[ignore = "a minute in release; run by hand when the encoder changes"]
fn avif_peak_memory_stays_under_the_estimate() {
    // Noise at the variant's own size: a resized one is smoother, cheaper.
    for (width, quality) in
        [(768u32, 50u8), (768, 80), (768, 90), (768, 95), (768, 100), (1024, 95), (1536, 80), (1536, 90)]
    {
        let source = testkit::double::noise_png("avif memory", width, width);
        let base = NOW.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        let spec = banatie_image::Spec {
            width: None,
            shape: Default::default(),
            format: Format::Avif,
            quality: Some(quality),
            max_source_pixels: 1 << 24,
            avif_speed: 9,
            xmp: None,
        };
        let d = banatie_image::derive(&source, &spec).unwrap();
        let peak = (PEAK.load(Ordering::SeqCst) - base) as u64;
        let estimate = banatie_image::avif_memory(d.width as u64 * d.height as u64, quality, false);
        println!(
            "w={width} q={quality}: peak {} MiB, estimate {} MiB, {} bytes",
            peak >> 20,
            estimate >> 20,
            d.bytes.len()
        );
        assert!(peak <= estimate, "w={width} q={quality}: {peak} > {estimate}");
    }
}
