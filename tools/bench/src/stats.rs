//! Latency samples → percentiles, the same nearest-rank rule as `shared/benches/ingest.rs`.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Samples {
    nanos: Vec<u64>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(n),
        }
    }
    pub fn push(&mut self, d: Duration) {
        self.nanos.push(d.as_nanos().min(u64::MAX as u128) as u64);
    }
    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }
    pub fn len(&self) -> usize {
        self.nanos.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }
    /// Quantile `q` in [0, 1], in microseconds (0 when empty).
    pub fn quantile_us(&mut self, q: f64) -> f64 {
        if self.nanos.is_empty() {
            return 0.0;
        }
        self.nanos.sort_unstable();
        let i = ((self.nanos.len() as f64 - 1.0) * q.clamp(0.0, 1.0)) as usize;
        self.nanos[i] as f64 / 1000.0
    }
}

/// Format microseconds with a unit that keeps 3 significant digits readable.
pub fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for i in 1..=100u64 {
            s.push(Duration::from_micros(i));
        }
        assert_eq!(s.quantile_us(0.5), 50.0);
        assert_eq!(s.quantile_us(0.99), 99.0);
        assert_eq!(s.quantile_us(1.0), 100.0);
        assert_eq!(fmt_us(1500.0), "1.50 ms");
    }
}
