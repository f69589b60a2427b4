//! Full-text search on what a job is about (its product name and ingredients): the words a job
//! is found by, and a query's words, both folded the same way — case and accents do not matter.
//!
//! A job's words are indexed when it is created (see `create.lua`); a query matches the jobs
//! that hold every one of its words, the last one as a prefix ("diet co" finds "Diet Cola").

use serde_json::Value;
use serde_json::value::RawValue;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The most words one job is indexed by: its product name's first, then its ingredients'.
pub const MAX_JOB_WORDS: usize = 64;
/// Words are cut to this many characters, in the index and in queries alike.
pub const MAX_WORD_CHARS: usize = 32;
/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most words one query may hold.
pub const MAX_QUERY_WORDS: usize = 8;
/// How many indexed words a query's last word may stand for, alphabetically first: a prefix as
/// short as "c" finds the jobs of the first hundred words starting with it.
pub const MAX_PREFIX_WORDS: usize = 100;

/// A parsed query: whole words, and the last word's beginning unless the query ended with a
/// space (then every word is whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub words: Vec<String>,
    pub prefix: Option<String>,
}

impl Search {
    /// The query in `q`; why it cannot be one.
    pub fn parse(q: &str) -> Result<Self, String> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("q is longer than {MAX_QUERY_CHARS} characters"));
        }
        let mut words = words_of(q);
        words.dedup();
        if words.len() > MAX_QUERY_WORDS {
            return Err(format!("q holds more than {MAX_QUERY_WORDS} words"));
        }
        let ends_a_word = q.ends_with(|c: char| c.is_alphanumeric() || is_combining_mark(c));
        let prefix = if ends_a_word { words.pop() } else { None };
        if words.is_empty() && prefix.is_none() {
            return Err("q must hold a letter or a digit".to_owned());
        }
        Ok(Self { words, prefix })
    }

    /// Whether a job indexed by `words` matches.
    pub fn matches(&self, words: &[String]) -> bool {
        self.words.iter().all(|word| words.contains(word))
            && self
                .prefix
                .as_ref()
                .is_none_or(|prefix| words.iter().any(|word| word.starts_with(prefix.as_str())))
    }
}

/// The words `text` is found by: letters and digits in their compatibility decomposition
/// (NFKD: "ﬁ" is "fi", "９" is "9"), lower case, accents dropped ("Crème brûlée" → "creme",
/// "brulee"), each cut to [`MAX_WORD_CHARS`].
pub fn words_of(text: &str) -> Vec<String> {
    let folded: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// The words a job with this input is found by: those of its `product_name` and `ingredients`
/// (a list of strings or one string), each once, at most [`MAX_JOB_WORDS`].
pub fn job_words(input: &RawValue) -> Vec<String> {
    let Ok(Value::Object(input)) = serde_json::from_str::<Value>(input.get()) else {
        return Vec::new();
    };
    let mut texts: Vec<&str> = Vec::new();
    if let Some(Value::String(name)) = input.get("product_name") {
        texts.push(name);
    }
    match input.get("ingredients") {
        Some(Value::String(list)) => texts.push(list),
        Some(Value::Array(items)) => texts.extend(items.iter().filter_map(Value::as_str)),
        _ => {}
    }
    let mut words: Vec<String> = Vec::new();
    for word in texts.into_iter().flat_map(words_of) {
        if words.len() == MAX_JOB_WORDS {
            break;
        }
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn case_and_accents_fold_away() {
        assert_eq!(words_of("Crème BRÛLÉE, 2×"), ["creme", "brulee", "2"]);
        assert_eq!(words_of("Ｅ９５１ ﬁne façade"), ["e951", "fine", "facade"]);
    }

    #[test]
    fn a_job_is_found_by_its_product_name_and_ingredients() {
        let input =
            raw(r#"{"product_name":"Diet Cola","ingredients":["Water","Aspartame (E951)"]}"#);
        assert_eq!(
            job_words(&input),
            ["diet", "cola", "water", "aspartame", "e951"]
        );
        let listed = raw(r#"{"product_name":"Tea","ingredients":"water, tea"}"#);
        assert_eq!(job_words(&listed), ["tea", "water"]);
        assert!(job_words(&raw(r#"[1,2]"#)).is_empty());
    }

    #[test]
    fn a_job_has_a_bounded_number_of_bounded_words() {
        let many: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let input = serde_json::json!({"product_name": "x".repeat(100), "ingredients": many});
        let words = job_words(&raw(&input.to_string()));
        assert_eq!(words.len(), MAX_JOB_WORDS);
        assert_eq!(words[0].chars().count(), MAX_WORD_CHARS);
    }

    #[test]
    fn the_last_word_of_a_query_is_a_prefix_unless_a_space_ends_it() {
        let typed = Search::parse("Diet co").unwrap();
        assert_eq!(
            (typed.words, typed.prefix),
            (vec!["diet".into()], Some("co".into()))
        );
        let whole = Search::parse("diet cola ").unwrap();
        assert_eq!(whole.words, ["diet", "cola"]);
        assert_eq!(whole.prefix, None);
    }

    #[test]
    fn a_query_matches_jobs_holding_every_word() {
        let words: Vec<String> = ["diet", "cola", "water"].map(String::from).into();
        assert!(Search::parse("COLA Diet").unwrap().matches(&words));
        assert!(Search::parse("diet wat").unwrap().matches(&words));
        assert!(!Search::parse("diet tea").unwrap().matches(&words));
        assert!(
            !Search::parse("diet cola ")
                .unwrap()
                .matches(&["diet".into()])
        );
    }

    #[test]
    fn queries_without_words_or_too_long_are_refused() {
        assert!(Search::parse(" ,;- ").is_err());
        assert!(Search::parse(&"a ".repeat(120)).is_err());
        assert!(Search::parse("a b c d e f g h i").is_err());
    }
}
