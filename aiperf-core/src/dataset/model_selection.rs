//! Several models in one run: which one each turn of the dataset names. As in AIPerf, the
//! choice is made for each turn before the run, in dataset order: the models in turn
//! ([`ModelSelection::RoundRobin`]) or one drawn for each turn ([`ModelSelection::Random`]),
//! from a random stream of its own under the run's seed, so that it does not shift the
//! arrival times or the prompts drawn from the same seed.

use rand::Rng;
use rand::rngs::StdRng;

use super::rng_for;

/// The random stream of the model draws.
const MODEL_STREAM: u64 = 0x6d6f_6465_6c73;

/// How each turn's model is chosen (`--model-selection-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSelection {
    /// The models in turn, one turn after another.
    RoundRobin,
    /// A model drawn for each turn.
    Random,
}

/// Picks the model of each turn, in dataset order: an index into the run's models.
#[derive(Debug)]
pub struct ModelPicker {
    selection: ModelSelection,
    models: usize,
    turns: usize,
    draws: StdRng,
}

impl ModelPicker {
    /// A picker among `models` models (at least one), drawing under `seed` when random.
    pub fn new(selection: ModelSelection, models: usize, seed: u64) -> Self {
        Self {
            selection,
            models: models.max(1),
            turns: 0,
            draws: rng_for(seed, MODEL_STREAM),
        }
    }

    /// The index of the next turn's model.
    pub fn next_model(&mut self) -> usize {
        match self.selection {
            ModelSelection::RoundRobin => {
                let model = self.turns % self.models;
                self.turns += 1;
                model
            }
            ModelSelection::Random => self.draws.random_range(0..self.models),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_takes_the_models_in_turn() {
        let mut picker = ModelPicker::new(ModelSelection::RoundRobin, 3, 0);
        let picks: Vec<usize> = (0..7).map(|_| picker.next_model()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn random_draws_every_model_and_the_same_ones_for_a_seed() {
        let draw = |seed| {
            let mut picker = ModelPicker::new(ModelSelection::Random, 3, seed);
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
