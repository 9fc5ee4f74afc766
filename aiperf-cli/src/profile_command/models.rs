//! `--model` with several names and `--model-selection-strategy`: the names, and the choice of
//! one for each turn ([`aiperf_core::dataset::model_selection`]).

use aiperf_core::dataset::model_selection::ModelSelection;
use anyhow::bail;

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

impl From<ModelSelectionArg> for ModelSelection {
    fn from(arg: ModelSelectionArg) -> Self {
        match arg {
            ModelSelectionArg::RoundRobin => Self::RoundRobin,
            ModelSelectionArg::Random => Self::Random,
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
}
