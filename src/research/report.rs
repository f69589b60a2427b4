//! The deep-research report: findings per ingredient and an overall risk level with its reasons.

use super::catalog::{Catalog, Ingredient};
use super::normalize::candidates;
use serde::Serialize;

/// How much concern one finding raises, from the IARC group and regulatory restrictions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Concern {
    /// Not classifiable (IARC 3) or not evaluated, and not restricted.
    Low,
    /// IARC 2B ("possibly carcinogenic"), or banned/restricted by a major regulator.
    Possible,
    /// IARC 2A ("probably carcinogenic").
    Elevated,
    /// IARC 1 ("carcinogenic to humans").
    High,
}

impl Concern {
    fn of(ingredient: &Ingredient) -> Self {
        let by_iarc = match ingredient.iarc_group.as_deref() {
            Some("1") => Concern::High,
            Some("2A") => Concern::Elevated,
            Some("2B") => Concern::Possible,
            _ => Concern::Low,
        };
        if ingredient.restricted {
            by_iarc.max(Concern::Possible)
        } else {
            by_iarc
        }
    }
}

/// What the table says about one listed ingredient.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// As the client listed it.
    pub ingredient: String,
    /// The table entry it matched.
    pub matched: String,
    pub e_number: Option<String>,
    pub category: String,
    pub iarc_group: Option<String>,
    pub restricted: bool,
    pub concern: Concern,
    pub status: String,
    pub note: String,
    pub source: String,
}

impl Finding {
    fn new(listed: &str, entry: &Ingredient) -> Self {
        Self {
            ingredient: listed.to_owned(),
            matched: entry.name.clone(),
            e_number: entry.e_number.clone(),
            category: entry.category.clone(),
            iarc_group: entry.iarc_group.clone(),
            restricted: entry.restricted,
            concern: Concern::of(entry),
            status: entry.status.clone(),
            note: entry.note.clone(),
            source: entry.source.clone(),
        }
    }
}

/// The overall level: the highest concern among the findings, or `unknown` when nothing matched.
#[derive(Debug, Serialize)]
pub struct OverallRisk {
    pub level: String,
    /// How the level was reached, in words.
    pub derivation: String,
}

/// The `result` of a completed deep-research job.
#[derive(Debug, Serialize)]
pub struct Report {
    pub product_name: String,
    pub overall_risk: OverallRisk,
    pub findings: Vec<Finding>,
    /// Listed ingredients the table does not know.
    pub unmatched: Vec<String>,
    pub ingredients_analyzed: usize,
    pub method: &'static str,
}

/// One listed ingredient's outcome.
pub fn look_up<'a>(catalog: &'a Catalog, listed: &str) -> Option<&'a Ingredient> {
    candidates(listed)
        .iter()
        .find_map(|name| catalog.find(name))
}

/// Builds the report for `ingredients` (already de-duplicated and non-empty).
pub fn build(catalog: &Catalog, product_name: &str, ingredients: &[String]) -> Report {
    let mut findings = Vec::new();
    let mut unmatched = Vec::new();
    for listed in ingredients {
        match look_up(catalog, listed) {
            Some(entry) => findings.push(Finding::new(listed, entry)),
            None => unmatched.push(listed.clone()),
        }
    }
    Report {
        product_name: product_name.to_owned(),
        overall_risk: overall(&findings, ingredients.len()),
        findings,
        unmatched,
        ingredients_analyzed: ingredients.len(),
        method: "Each ingredient is normalised (case, spacing, E-number spelling, synonyms) and \
                 looked up in jobcast's bundled table of IARC classifications and regulatory \
                 status; concern is high for IARC Group 1, elevated for 2A, possible for 2B or a \
                 regulatory ban or restriction, low otherwise.",
    }
}

fn overall(findings: &[Finding], listed: usize) -> OverallRisk {
    let Some(worst) = findings.iter().max_by_key(|f| f.concern) else {
        return OverallRisk {
            level: "unknown".into(),
            derivation: format!("None of the {listed} ingredients is in the table."),
        };
    };
    let level = serde_json::to_value(worst.concern).expect("serialises");
    let level = level.as_str().unwrap_or_default().to_owned();
    let reasons: Vec<String> = findings
        .iter()
        .filter(|f| f.concern == worst.concern)
        .map(|f| format!("{} ({})", f.matched, reason(f)))
        .collect();
    OverallRisk {
        derivation: format!(
            "Highest concern among {} matched of {listed} listed ingredients is {level}: {}.",
            findings.len(),
            reasons.join("; ")
        ),
        level,
    }
}

fn reason(finding: &Finding) -> String {
    let mut parts = Vec::new();
    if let Some(group) = &finding.iarc_group {
        parts.push(format!("IARC Group {group}"));
    }
    if finding.restricted {
        parts.push("restricted by a regulator".into());
    }
    if parts.is_empty() {
        parts.push("not classified as a carcinogen".into());
    }
    parts.join(", ")
}
