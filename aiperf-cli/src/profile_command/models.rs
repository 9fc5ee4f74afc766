//! Several `--model` names: which one each turn of the dataset names. As in AIPerf, the choice
//! is made for each turn before the run, in dataset order: the names in turn (`round_robin`,
//! the default) or one drawn with the run's seed (`random`).

use anyhow::bail;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::args::ModelSelectionArg;

/// The names of `--model`: separated by commas, blanks trimmed; at least one.
pub(crate) fn model_names(flag: &str) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = flag
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        bail!("--model names no model: give one, or several separated by commas");
    }
    Ok(names)
}

/// Picks the model of each turn, in dataset order: an index into the names.
#[derive(Debug)]
pub(crate) struct ModelPicker {
    strategy: ModelSelectionArg,
    models: usize,
    turns: usize,
    draws: StdRng,
}

impl ModelPicker {
    /// A picker among `models` names (at least one), drawing with `seed` when random.
    pub(crate) fn new(strategy: ModelSelectionArg, models: usize, seed: u64) -> Self {
        Self {
            strategy,
            models: models.max(1),
            turns: 0,
            draws: StdRng::seed_from_u64(seed),
        }
    }

    /// The index of the next turn's model.
    pub(crate) fn next_model(&mut self) -> usize {
        match self.strategy {
            ModelSelectionArg::RoundRobin => {
                let model = self.turns % self.models;
                self.turns += 1;
                model
            }
            ModelSelectionArg::Random => self.draws.random_range(0..self.models),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_at_commas_and_trimmed() {
        assert_eq!(model_names("a").unwrap(), ["a"]);
        assert_eq!(model_names(" a, b ,c,").unwrap(), ["a", "b", "c"]);
        let error = model_names(" , ").unwrap_err().to_string();
        assert!(error.contains("--model names no model"), "{error}");
    }

    #[test]
    fn round_robin_takes_the_names_in_turn() {
        let mut picker = ModelPicker::new(ModelSelectionArg::RoundRobin, 3, 0);
        let picks: Vec<usize> = (0..7).map(|_| picker.next_model()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn random_draws_every_name_and_the_same_ones_for_a_seed() {
        let draw = |seed| {
            let mut picker = ModelPicker::new(ModelSelectionArg::Random, 3, seed);
            (0..300).map(|_| picker.next_model()).collect::<Vec<_>>()
        };
        let picks = draw(7);
        for model in 0..3 {
            let share = picks.iter().filter(|&&p| p == model).count();
            assert!((60..=140).contains(&share), "model {model}: {share} of 300");
        }
        assert_eq!(picks, draw(7));
        assert_ne!(picks, draw(8));
    }
}
