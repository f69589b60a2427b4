//! The bundled ingredient table (`ingredients.json`) and lookups by normalised name.

use super::normalize::normalize;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::LazyLock;

/// One ingredient or additive with its classification and where the facts come from.
#[derive(Debug, Deserialize, Serialize)]
pub struct Ingredient {
    pub name: String,
    pub aliases: Vec<String>,
    pub e_number: Option<String>,
    pub category: String,
    /// IARC Monographs group ("1", "2A", "2B", "3"), when IARC evaluated the agent.
    pub iarc_group: Option<String>,
    /// Banned or restricted in food or cosmetics by a major regulator (EU, US FDA).
    pub restricted: bool,
    pub status: String,
    pub note: String,
    pub source: String,
}

/// The table, indexed by every normalised name and alias.
pub struct Catalog {
    ingredients: Vec<Ingredient>,
    index: HashMap<String, usize>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::from_json(include_str!("ingredients.json")).expect("bundled ingredients.json is valid")
});

impl Catalog {
    /// The table bundled in the binary.
    pub fn bundled() -> &'static Catalog {
        &CATALOG
    }

    /// Parses a table and indexes its names and aliases; a name used twice is an error.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let ingredients: Vec<Ingredient> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut index = HashMap::new();
        for (position, ingredient) in ingredients.iter().enumerate() {
            let names = std::iter::once(&ingredient.name).chain(&ingredient.aliases);
            for name in names {
                if index
                    .insert(normalize(name), position)
                    .is_some_and(|p| p != position)
                {
                    return Err(format!("{name:?} names two ingredients"));
                }
            }
        }
        Ok(Self { ingredients, index })
    }

    /// The ingredient known under this (already normalised) name.
    pub fn find(&self, normalised: &str) -> Option<&Ingredient> {
        self.index.get(normalised).map(|&i| &self.ingredients[i])
    }

    pub fn len(&self) -> usize {
        self.ingredients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ingredients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_has_at_least_150_sourced_entries() {
        let catalog = Catalog::bundled();
        assert!(catalog.len() >= 150, "only {} entries", catalog.len());
        for ingredient in &catalog.ingredients {
            assert!(
                !ingredient.source.trim().is_empty(),
                "{} has no source",
                ingredient.name
            );
            assert!(
                !ingredient.note.trim().is_empty(),
                "{} has no note",
                ingredient.name
            );
        }
    }
}
