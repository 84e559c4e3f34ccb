//! Envoy's success-rate test: an endpoint is an outlier when its success rate over the last
//! interval is below `mean - stdev_factor × stdev` of the rates of all endpoints judged (those
//! with enough requests). Relative, not absolute: when every endpoint fails alike (the
//! destination is down, or the caller sends bad requests), nobody stands out and nobody is
//! ejected, which is what consecutive-failure ejection cannot tell.

/// The success rate below which an endpoint is an outlier (population standard deviation).
pub fn threshold(rates: &[f64], stdev_factor: f64) -> f64 {
    if rates.is_empty() {
        return 0.0;
    }
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    mean - stdev_factor * variance.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_endpoint_among_five_stands_out() {
        let rates = [1.0, 1.0, 0.99, 1.0, 0.2];
        let t = threshold(&rates, 1.9);
        assert!(0.2 < t && t < 0.99, "{t}");
    }

    #[test]
    fn endpoints_failing_alike_do_not() {
        let rates = [0.1, 0.1, 0.1, 0.1, 0.1];
        assert!((threshold(&rates, 1.9) - 0.1).abs() < 1e-12);
        assert!(rates.iter().all(|r| *r >= threshold(&rates, 1.9)));
    }

    #[test]
    fn three_endpoints_need_a_smaller_factor() {
        // With n endpoints no z-score exceeds sqrt(n - 1): 1.9 can never flag one of three.
        let rates = [1.0, 1.0, 0.0];
        assert!(0.0 > threshold(&rates, 1.9) - 1e-12);
        assert!(0.0 < threshold(&rates, 1.0));
    }
}
