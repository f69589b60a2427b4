//! The built-in deep-research job: what it takes as input, the steps it reports, the report it makes.

pub mod catalog;
mod normalize;
mod report;

pub use catalog::Catalog;
pub use normalize::normalize;
pub use report::{Concern, Report};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest product name accepted, in characters.
pub const MAX_PRODUCT_NAME_CHARS: usize = 200;
/// The most ingredients one job analyses.
pub const MAX_INGREDIENTS: usize = 500;
/// The longest single ingredient, in characters.
pub const MAX_INGREDIENT_CHARS: usize = 200;

/// A deep-research job's input, as stored with the job.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResearchInput {
    pub product_name: String,
    pub ingredients: Vec<String>,
}

impl ResearchInput {
    /// Reads `{"product_name": "...", "ingredients": [...] | "a, b, c"}`, explaining what is wrong.
    pub fn from_request(body: &Value) -> Result<Self, String> {
        let product_name = match body.get("product_name") {
            None | Some(Value::Null) => return Err("product_name is required".into()),
            Some(Value::String(name)) if name.trim().is_empty() => {
                return Err("product_name must not be empty".into());
            }
            Some(Value::String(name)) if name.chars().count() > MAX_PRODUCT_NAME_CHARS => {
                return Err(format!(
                    "product_name is longer than {MAX_PRODUCT_NAME_CHARS} characters"
                ));
            }
            Some(Value::String(name)) => name.trim().to_owned(),
            Some(_) => return Err("product_name must be a string".into()),
        };
        let ingredients = match body.get("ingredients") {
            None | Some(Value::Null) => return Err("ingredients is required".into()),
            Some(Value::String(text)) => text.split(',').map(|i| i.trim().to_owned()).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(|i| i.trim().to_owned()))
                .collect::<Option<Vec<_>>>()
                .ok_or("ingredients must be a list of strings or a comma-separated string")?,
            Some(_) => {
                return Err(
                    "ingredients must be a list of strings or a comma-separated string".into(),
                );
            }
        };
        if ingredients.len() > MAX_INGREDIENTS {
            return Err(format!(
                "at most {MAX_INGREDIENTS} ingredients are accepted"
            ));
        }
        if ingredients
            .iter()
            .any(|i| i.chars().count() > MAX_INGREDIENT_CHARS)
        {
            return Err(format!(
                "an ingredient is longer than {MAX_INGREDIENT_CHARS} characters"
            ));
        }
        Ok(Self {
            product_name,
            ingredients,
        })
    }

    /// The ingredients worth analysing: trimmed, non-empty, each distinct one once, in order.
    pub fn usable_ingredients(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.ingredients
            .iter()
            .filter(|i| {
                let key = normalize(i);
                !key.is_empty() && seen.insert(key)
            })
            .map(|i| i.trim().to_owned())
            .collect()
    }
}

/// One reported step: the progress it reaches and the text the watcher sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub progress: u8,
    pub text: String,
}

/// The text of the final step, shown with progress 100.
pub const FINAL_STEP: &str = "Complete";

/// The steps of a run over `ingredients`, in order; progress never decreases along them.
pub fn plan(ingredients: &[String]) -> Vec<Step> {
    let step = |progress: u8, text: String| Step { progress, text };
    let mut steps = vec![
        step(5, "Preparing comprehensive analysis...".into()),
        step(10, "Analyzing ingredients database...".into()),
    ];
    let total = ingredients.len();
    for (i, ingredient) in ingredients.iter().enumerate() {
        let progress = 10 + (75 * (i + 1) / total) as u8;
        let text = format!("Analyzing ingredient {} of {total}: {ingredient}", i + 1);
        steps.push(step(progress, text));
    }
    steps.push(step(90, "Cross-referencing research findings...".into()));
    steps.push(step(95, "Generating risk assessment report...".into()));
    steps
}

/// The report for `input`, or why it cannot be made.
pub fn research(input: &ResearchInput) -> Result<Report, String> {
    let ingredients = input.usable_ingredients();
    if ingredients.is_empty() {
        return Err(if input.ingredients.is_empty() {
            "No ingredients to analyse: the ingredient list is empty".into()
        } else {
            "No usable ingredients: every entry in the list is blank".into()
        });
    }
    Ok(report::build(
        Catalog::bundled(),
        &input.product_name,
        &ingredients,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(ingredients: Value) -> ResearchInput {
        ResearchInput::from_request(&json!({"product_name": "Cola", "ingredients": ingredients}))
            .unwrap()
    }

    #[test]
    fn ingredients_may_come_as_one_comma_separated_string() {
        let input = input(json!("Water, sugar ,  E150d,,"));
        assert_eq!(input.usable_ingredients(), ["Water", "sugar", "E150d"]);
    }

    #[test]
    fn progress_never_decreases_along_the_plan() {
        let many: Vec<String> = (0..200).map(|i| format!("thing {i}")).collect();
        let steps = plan(&many);
        assert!(steps.windows(2).all(|w| w[0].progress <= w[1].progress));
        assert!(steps.last().unwrap().progress < 100);
    }

    #[test]
    fn a_known_carcinogen_sets_the_overall_level() {
        let report = research(&input(json!(["water", "Sodium Nitrite", "E 951"]))).unwrap();
        assert_eq!(report.findings.len(), 3);
        assert_eq!(report.overall_risk.level, "elevated");
        assert!(report.overall_risk.derivation.contains("sodium nitrite"));
    }

    #[test]
    fn unknown_ingredients_are_listed_as_unmatched() {
        let report = research(&input(json!(["water", "unobtainium"]))).unwrap();
        assert_eq!(report.unmatched, ["unobtainium"]);
    }

    #[test]
    fn an_empty_list_cannot_be_researched() {
        assert!(research(&input(json!([]))).unwrap_err().contains("empty"));
        assert!(
            research(&input(json!(["  ", ""])))
                .unwrap_err()
                .contains("blank")
        );
    }
}
