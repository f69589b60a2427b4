//! Latency histograms shared by the generator's tasks, and the figures a scenario reports from them.

use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::rc::Rc;

/// Microseconds from sending to receiving, recorded by many tasks on the generator's one thread.
pub type Latencies = Rc<RefCell<Histogram<u64>>>;

/// An empty histogram from 1 µs to 60 s, 3 significant figures.
pub fn histogram() -> Latencies {
    Rc::new(RefCell::new(
        Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
    ))
}

/// p50, p99 and max, in milliseconds.
pub fn percentiles_ms(h: &Histogram<u64>) -> (f64, f64, f64) {
    let ms = |us: u64| us as f64 / 1000.0;
    (
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    )
}

/// `value` rounded to two decimals, as the JSON lines print figures.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
