//! The flow-matching sampler: a linear 1 -> 0 schedule with SD3/FLUX's time shift, and the
//! Euler update `x += v * (t_next - t_cur)`.

use candle_core::{Result, Tensor};

/// `steps + 1` times from 1 to 0, each shifted by `shift * t / (1 + (shift - 1) * t)` (a
/// shift above 1 spends more steps at high noise).
pub fn flow_timesteps(steps: usize, shift: f64) -> Vec<f64> {
    (0..=steps)
        .map(|i| {
            let t = 1.0 - i as f64 / steps.max(1) as f64;
            shift * t / (1.0 + (shift - 1.0) * t)
        })
        .collect()
}

/// One Euler step of the flow ODE from `t_cur` to `t_next`.
pub(crate) fn euler_step(x: &Tensor, v: &Tensor, t_cur: f64, t_next: f64) -> Result<Tensor> {
    x + (v * (t_next - t_cur))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_runs_from_one_to_zero_and_shift_keeps_high_noise_longer() {
        let plain = flow_timesteps(4, 1.0);
        assert_eq!(plain, vec![1.0, 0.75, 0.5, 0.25, 0.0]);
        let shifted = flow_timesteps(4, 3.0);
        assert_eq!(shifted.first(), Some(&1.0));
        assert_eq!(shifted.last(), Some(&0.0));
        assert!(shifted[2] > plain[2]);
        assert!(shifted.windows(2).all(|w| w[0] > w[1]));
    }
}
